package apikey

import (
	"hash/crc32"
	"testing"
)

// FuzzCRC32IEEE checks the in-place CRC against the standard library's.
func FuzzCRC32IEEE(f *testing.F) {
	f.Add("")
	f.Add("ck_live_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh")
	f.Add("a")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := crc32IEEE(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Fatalf("crc32IEEE = %08x, want %08x", got, want)
		}
		for i := 0; i <= len(s); i += 1 + i/3 {
			if got, want := crc32Update(crc32IEEE(s[:i]), s[i:]), crc32.ChecksumIEEE([]byte(s)); got != want {
				t.Fatalf("crc32Update split at %d = %08x, want %08x", i, got, want)
			}
		}
	})
}

func TestDecodeChecksum(t *testing.T) {
	for _, c := range []uint32{0, 1, 61, 62, 3843, 1 << 31, 1<<32 - 1, 0xdeadbeef} {
		var b [ChecksumLen]byte
		putChecksum(b[:], c)
		got, ok := decodeChecksum(string(b[:]))
		if !ok || got != uint64(c) {
			t.Errorf("decode(put(%d)) = %d, %v", c, got, ok)
		}
	}
	for _, s := range []string{"00000-", "\xff00000", "_00000"} {
		if _, ok := decodeChecksum(s); ok {
			t.Errorf("decode(%q) accepted", s)
		}
	}
	if v, ok := decodeChecksum("zzzzzz"); !ok || v != 56800235583 {
		t.Errorf("decode(zzzzzz) = %d, %v; want 62^6-1", v, ok)
	}
}
