package apikey_test

import (
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
)

// checksummed is the checkout format with checksums turned on.
var checksummed = func() apikey.Format {
	f, err := apikey.NewFormat("ck", apikey.WithChecksum())
	if err != nil {
		panic(err)
	}
	return f
}()

// withChecksum appends the checksum of body, computed independently of the
// package: CRC-32 (IEEE) in base 62, six digits, most significant first.
func withChecksum(body string) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	c := crc32.ChecksumIEEE([]byte(body))
	var out [6]byte
	for i := 5; i >= 0; i-- {
		out[i] = digits[c%62]
		c /= 62
	}
	return body + string(out[:])
}

func TestChecksummedGenerate(t *testing.T) {
	for _, m := range []apikey.Mode{apikey.Live, apikey.Test} {
		for range 200 {
			sec, err := checksummed.Generate(m)
			if err != nil {
				t.Fatal(err)
			}
			raw := sec.Reveal()
			if len(raw) != checksummed.KeyLen() || len(raw) != len("ck_live_")+apikey.RandomLen+apikey.ChecksumLen {
				t.Fatalf("len = %d, want %d", len(raw), checksummed.KeyLen())
			}
			if want := withChecksum(raw[:len(raw)-apikey.ChecksumLen]); raw != want {
				t.Fatalf("checksum of a generated key differs from the reference computation")
			}
			if got, err := checksummed.Parse(raw); err != nil || got != m {
				t.Fatalf("Parse(generated) = %v, %v", got, err)
			}
			if got := sec.DisplayPrefix(); got != raw[:len("ck_live_")+apikey.DisplayLen] {
				t.Fatalf("display prefix %q", got)
			}
			// The plain format refuses a checksummed key: it is not 32
			// characters.
			if _, err := apikey.Default.Parse(raw); !errors.Is(err, apikey.ErrLength) {
				t.Fatalf("plain Parse(checksummed) = %v, want ErrLength", err)
			}
		}
	}
	if apikey.Default.Checksummed() || !checksummed.Checksummed() {
		t.Error("Checksummed() is wrong")
	}
	if apikey.Default.KeyLen() != 40 || checksummed.KeyLen() != 46 {
		t.Errorf("KeyLen = %d, %d; want 40, 46", apikey.Default.KeyLen(), checksummed.KeyLen())
	}
}

func TestChecksummedParse(t *testing.T) {
	good := withChecksum("ck_live_" + valid32)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name    string
		raw     string
		want    apikey.Mode
		wantErr error
	}{
		{"checksummed live", good, apikey.Live, nil},
		{"checksummed test", withChecksum("ck_test_" + valid32), apikey.Test, nil},
		{"plain key of the old format", "ck_live_" + valid32, apikey.Live, nil},
		{"a random character mistyped", flip(good, 12), 0, apikey.ErrChecksum},
		{"a checksum character mistyped", flip(good, len(good)-1), 0, apikey.ErrChecksum},
		{"two characters swapped", good[:10] + good[11:12] + good[10:11] + good[12:], 0, apikey.ErrChecksum},
		{"mode changed", "ck_test_" + good[len("ck_live_"):], 0, apikey.ErrChecksum},
		{"invented", "ck_live_" + strings.Repeat("A", 38), 0, apikey.ErrChecksum},
		{"checksum of another product", withChecksum("ab_live_" + valid32)[len("ab_"):], 0, apikey.ErrPrefix},
		{"checksum outside the alphabet", good[:len(good)-1] + "-", 0, apikey.ErrAlphabet},
		{"one character short", good[:len(good)-1], 0, apikey.ErrLength},
		{"one character long", good + "A", 0, apikey.ErrLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checksummed.Parse(tc.raw)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("Parse = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, apikey.ErrMalformed) {
					t.Errorf("%v does not match ErrMalformed", err)
				}
				if strings.Contains(err.Error(), tc.raw[8:]) {
					t.Errorf("error %q quotes the key", err)
				}
			}
		})
	}
	if errors.Is(apikey.ErrChecksum, apikey.ErrLength) || errors.Is(apikey.ErrAlphabet, apikey.ErrChecksum) {
		t.Error("ErrChecksum is not distinct")
	}
}

// TestChecksumCatchesEveryTypo changes each character of a checksummed key
// to every other base-62 character: CRC-32 detects every single-character
// error, so none may parse.
func TestChecksumCatchesEveryTypo(t *testing.T) {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	good := withChecksum("ck_live_" + valid32)
	for i := len("ck_live_"); i < len(good); i++ {
		for j := 0; j < len(digits); j++ {
			if digits[j] == good[i] {
				continue
			}
			typo := good[:i] + digits[j:j+1] + good[i+1:]
			if _, err := checksummed.Parse(typo); !errors.Is(err, apikey.ErrChecksum) {
				t.Fatalf("typo at %d (%c) parsed: %v", i, digits[j], err)
			}
		}
	}
}

func TestChecksummedParseDoesNotAllocate(t *testing.T) {
	raw := withChecksum("ck_live_" + valid32)
	bad := raw[:len(raw)-1] + "0"
	if raw == bad {
		bad = raw[:len(raw)-1] + "1"
	}
	if n := testing.AllocsPerRun(100, func() {
		sinkMode, _ = checksummed.Parse(raw)
		sinkMode, _ = checksummed.Parse(bad)
	}); n != 0 {
		t.Errorf("Parse allocates %v times", n)
	}
}

func ExampleWithChecksum() {
	f, err := apikey.NewFormat("ck", apikey.WithChecksum())
	if err != nil {
		panic(err)
	}
	sec, err := f.Generate(apikey.Live)
	if err != nil {
		panic(err)
	}
	raw := sec.Reveal()
	fmt.Println(len(raw), f.KeyLen())

	// One mistyped character: refused offline, before any hash or lookup.
	typo := []byte(raw)
	if typo[20] == 'x' {
		typo[20] = 'y'
	} else {
		typo[20] = 'x'
	}
	_, err = f.Parse(string(typo))
	fmt.Println(err)
	// Output:
	// 46 46
	// apikey: malformed key: checksum mismatch
}
