package apikey_test

import (
	"crypto/rand"
	"testing"

	"github.com/keyward/keyward/apikey"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// chiSquareBound is the critical value of the chi-square test of one
// character position (61 degrees of freedom). A uniform generator exceeds it
// with probability 3.1e-12 per position (regularized upper incomplete gamma
// Q(30.5, 85)), so across 33 checks a correct generator fails one run in
// about 10^10.
//
// A generator taking a random byte modulo 62 gives the first 8 characters
// probability 5/256 and the others 4/256. With uniformitySamples samples
// per position its statistic is about 61 + 0.00659*samples = 720, more
// than ten standard deviations above the bound: it fails every time.
const (
	chiSquareBound    = 170
	uniformitySamples = 100_000
)

// chiSquare returns the chi-square statistic of each of the 32 character
// positions, and of all positions pooled, for n keys from gen.
func chiSquare(t *testing.T, n int, gen func() string) (perPosition [apikey.RandomLen]float64, pooled float64) {
	t.Helper()
	var index [256]int
	for i := range index {
		index[i] = -1
	}
	for i := range len(base62) {
		index[base62[i]] = i
	}
	var counts [apikey.RandomLen][62]int
	var all [62]int
	for range n {
		raw := gen()
		random := raw[len(raw)-apikey.RandomLen:]
		for pos := range apikey.RandomLen {
			c := index[random[pos]]
			if c < 0 {
				t.Fatalf("character %q outside the alphabet", random[pos])
			}
			counts[pos][c]++
			all[c]++
		}
	}
	stat := func(counts []int, total int) float64 {
		expected := float64(total) / 62
		var x float64
		for _, c := range counts {
			d := float64(c) - expected
			x += d * d / expected
		}
		return x
	}
	for pos := range counts {
		perPosition[pos] = stat(counts[pos][:], n)
	}
	return perPosition, stat(all[:], n*apikey.RandomLen)
}

func TestGenerateIsUniform(t *testing.T) {
	perPosition, pooled := chiSquare(t, uniformitySamples, func() string {
		sec, err := apikey.Generate(apikey.Test)
		if err != nil {
			t.Fatal(err)
		}
		return sec.Reveal()
	})
	for pos, x := range perPosition {
		if x > chiSquareBound {
			t.Errorf("position %d: chi-square %.1f > %d: not uniform", pos, x, chiSquareBound)
		}
	}
	if pooled > chiSquareBound {
		t.Errorf("all positions: chi-square %.1f > %d: not uniform", pooled, chiSquareBound)
	}
	t.Logf("pooled chi-square %.1f (61 degrees of freedom, mean 61)", pooled)
}

// TestModuloBiasIsDetected shows that the uniformity test has teeth: the
// naive generator, a random byte modulo 62, fails it at every position.
func TestModuloBiasIsDetected(t *testing.T) {
	perPosition, pooled := chiSquare(t, uniformitySamples, func() string {
		var b [apikey.RandomLen]byte
		_, _ = rand.Read(b[:])
		for i := range b {
			b[i] = base62[b[i]%62]
		}
		return string(b[:])
	})
	for pos, x := range perPosition {
		if x <= chiSquareBound {
			t.Errorf("position %d: the biased generator scored %.1f <= %d", pos, x, chiSquareBound)
		}
	}
	t.Logf("biased generator, pooled chi-square %.1f", pooled)
}
