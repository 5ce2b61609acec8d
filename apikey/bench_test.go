package apikey_test

import (
	"testing"

	"github.com/keyward/keyward/apikey"
)

var (
	sinkMode apikey.Mode
	sinkHash apikey.Hash
)

func BenchmarkGenerate(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := apikey.Generate(apikey.Live); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := apikey.Generate(apikey.Live); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkParse(b *testing.B) {
	raw := "ck_live_" + valid32
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkMode, _ = apikey.Parse(raw)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var m apikey.Mode
			for pb.Next() {
				m, _ = apikey.Parse(raw)
			}
			_ = m
		})
	})
}

func BenchmarkHash(b *testing.B) {
	raw := "ck_live_" + valid32
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkHash = apikey.HashOf(raw)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var h apikey.Hash
			for pb.Next() {
				h = apikey.HashOf(raw)
			}
			_ = h
		})
	})
}
