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

// BenchmarkParseChecksum compares Parse of a plain key, of a checksummed
// key, and of a checksummed key whose checksum fails, in one run.
func BenchmarkParseChecksum(b *testing.B) {
	sum := withChecksum("ck_live_" + valid32)
	for _, bc := range []struct {
		name   string
		format apikey.Format
		raw    string
	}{
		{"plain", apikey.Default, "ck_live_" + valid32},
		{"checksummed", checksummed, sum},
		{"bad-checksum", checksummed, sum[:len(sum)-1] + "0"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkMode, _ = bc.format.Parse(bc.raw)
			}
		})
	}
}

// BenchmarkRedact measures Redact on a log line with no key (the common
// case, which must not allocate) and with one.
func BenchmarkRedact(b *testing.B) {
	clean := `method=GET path=/v1/links status=200 duration=3.2ms user_agent="Go-http-client/1.1"`
	dirty := clean + ` authorization="Bearer ck_live_` + valid32 + `"`
	for _, bc := range []struct{ name, text string }{{"clean", clean}, {"key", dirty}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.text)))
			for b.Loop() {
				_ = apikey.Default.Redact(bc.text)
			}
		})
	}
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
