package apikey_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
)

const valid32 = "4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh"

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    apikey.Mode
		wantErr error
	}{
		{"live", "ck_live_" + valid32, apikey.Live, nil},
		{"test", "ck_test_" + valid32, apikey.Test, nil},
		{"all digits", "ck_live_" + strings.Repeat("0", 32), apikey.Live, nil},
		{"all z", "ck_test_" + strings.Repeat("z", 32), apikey.Test, nil},
		{"empty", "", 0, apikey.ErrPrefix},
		{"product only", "ck", 0, apikey.ErrPrefix},
		{"other product", "sk_live_" + valid32, 0, apikey.ErrPrefix},
		{"uppercase product", "CK_live_" + valid32, 0, apikey.ErrPrefix},
		{"no separator", "cklive_" + valid32, 0, apikey.ErrPrefix},
		{"longer product", "ckx_live_" + valid32, 0, apikey.ErrPrefix},
		{"leading space", " ck_live_" + valid32, 0, apikey.ErrPrefix},
		{"bearer included", "Bearer ck_live_" + valid32, 0, apikey.ErrPrefix},
		{"unknown mode", "ck_prod_" + valid32, 0, apikey.ErrMode},
		{"uppercase mode", "ck_LIVE_" + valid32, 0, apikey.ErrMode},
		{"mode without separator", "ck_live" + valid32, 0, apikey.ErrMode},
		{"mode only", "ck_live", 0, apikey.ErrMode},
		{"nothing after mode", "ck_live_", 0, apikey.ErrLength},
		{"31 characters", "ck_live_" + valid32[:31], 0, apikey.ErrLength},
		{"33 characters", "ck_live_" + valid32 + "A", 0, apikey.ErrLength},
		{"trailing newline", "ck_live_" + valid32 + "\n", 0, apikey.ErrLength},
		{"absurd length", "ck_live_" + strings.Repeat("a", 1<<16), 0, apikey.ErrLength},
		{"underscore", "ck_live_" + valid32[:31] + "_", 0, apikey.ErrAlphabet},
		{"dash", "ck_test_-" + valid32[1:], 0, apikey.ErrAlphabet},
		{"space", "ck_test_" + valid32[:10] + " " + valid32[11:], 0, apikey.ErrAlphabet},
		{"NUL", "ck_test_" + valid32[:31] + "\x00", 0, apikey.ErrAlphabet},
		{"non-ASCII of the same byte length", "ck_live_" + valid32[:30] + "é", 0, apikey.ErrAlphabet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := apikey.Parse(tc.raw)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Parse(%q) error = %v, want %v", tc.raw, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("Parse(%q) = %v, want %v", tc.raw, got, tc.want)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, apikey.ErrMalformed) {
					t.Errorf("error %v does not match ErrMalformed", err)
				}
				if len(tc.raw) > 10 && strings.Contains(err.Error(), tc.raw[8:]) {
					t.Errorf("error %q quotes the key", err)
				}
			}
		})
	}
}

func TestMalformedErrorsAreDistinct(t *testing.T) {
	errs := []error{apikey.ErrPrefix, apikey.ErrMode, apikey.ErrLength, apikey.ErrAlphabet}
	for i, a := range errs {
		for j, b := range errs {
			if got := errors.Is(a, b); got != (i == j) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, got)
			}
		}
	}
}

func TestParseCustomFormat(t *testing.T) {
	f, err := apikey.NewFormat("acme2")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := f.Parse("acme2_test_" + valid32); err != nil || m != apikey.Test {
		t.Errorf("Parse = %v, %v; want test", m, err)
	}
	if _, err := f.Parse("ck_test_" + valid32); !errors.Is(err, apikey.ErrPrefix) {
		t.Errorf("a ck key under the acme2 format: %v, want ErrPrefix", err)
	}
	if _, err := apikey.Parse("acme2_test_" + valid32); !errors.Is(err, apikey.ErrPrefix) {
		t.Errorf("an acme2 key under the default format: %v, want ErrPrefix", err)
	}
	var zero apikey.Format
	if _, err := zero.Parse("_live_" + valid32); !errors.Is(err, apikey.ErrPrefix) {
		t.Errorf("the zero Format accepted a key: %v", err)
	}
}

func TestNewFormat(t *testing.T) {
	tests := []struct {
		product string
		ok      bool
	}{
		{"ck", true},
		{"a", true},
		{"acme2", true},
		{"abcdefgh", true},
		{"", false},
		{"abcdefghi", false},
		{"Ck", false},
		{"2ck", false},
		{"c_k", false},
		{"c-k", false},
		{"ck ", false},
		{"çk", false},
	}
	for _, tc := range tests {
		t.Run(tc.product, func(t *testing.T) {
			f, err := apikey.NewFormat(tc.product)
			if (err == nil) != tc.ok {
				t.Fatalf("NewFormat(%q) error = %v, want ok=%v", tc.product, err, tc.ok)
			}
			if tc.ok && f.Product() != tc.product {
				t.Errorf("Product() = %q", f.Product())
			}
		})
	}
}

var keyPattern = regexp.MustCompile(`^ck_(live|test)_[0-9A-Za-z]{32}$`)

func TestGenerate(t *testing.T) {
	for _, mode := range []apikey.Mode{apikey.Live, apikey.Test} {
		t.Run(mode.String(), func(t *testing.T) {
			sec, err := apikey.Generate(mode)
			if err != nil {
				t.Fatal(err)
			}
			raw := sec.Reveal()
			if !keyPattern.MatchString(raw) {
				t.Fatalf("generated key %q does not match %v", raw, keyPattern)
			}
			if !strings.HasPrefix(raw, "ck_"+mode.String()+"_") {
				t.Errorf("key %q does not carry mode %v", raw, mode)
			}
			if got, err := apikey.Parse(raw); err != nil || got != mode {
				t.Errorf("Parse(Generate(%v)) = %v, %v", mode, got, err)
			}
			if got, want := sec.DisplayPrefix(), raw[:len("ck_live_")+6]; got != want {
				t.Errorf("DisplayPrefix = %q, want %q", got, want)
			}
			if got := apikey.Default.DisplayPrefix(raw); got != sec.DisplayPrefix() {
				t.Errorf("Format.DisplayPrefix = %q, want %q", got, sec.DisplayPrefix())
			}
			if sec.Mode() != mode {
				t.Errorf("Mode = %v", sec.Mode())
			}
			if sec.Hash() != apikey.HashOf(raw) {
				t.Error("Secret.Hash differs from HashOf(raw)")
			}
		})
	}
	for _, bad := range []apikey.Mode{0, 3} {
		if _, err := apikey.Generate(bad); !errors.Is(err, apikey.ErrInvalidMode) {
			t.Errorf("Generate(%v) = %v, want ErrInvalidMode", bad, err)
		}
	}
	var zero apikey.Format
	if _, err := zero.Generate(apikey.Live); err == nil {
		t.Error("the zero Format generated a key")
	}
}

func TestDisplayPrefixOfMalformed(t *testing.T) {
	if got := apikey.Default.DisplayPrefix("ck_live_short"); got != "" {
		t.Errorf("DisplayPrefix of a malformed key = %q, want empty", got)
	}
}

func TestGenerateNoDuplicates(t *testing.T) {
	const n = 1_000_000
	seen := make(map[string]struct{}, n)
	for range n {
		sec, err := apikey.Generate(apikey.Live)
		if err != nil {
			t.Fatal(err)
		}
		raw := sec.Reveal()
		if _, dup := seen[raw]; dup {
			t.Fatalf("duplicate key after %d keys", len(seen))
		}
		seen[raw] = struct{}{}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	raw := "ck_live_" + valid32
	bad := "ck_live_" + valid32[:31] + "!"
	if n := testing.AllocsPerRun(100, func() { _, _ = apikey.Parse(raw) }); n != 0 {
		t.Errorf("Parse of a valid key allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = apikey.Parse(bad) }); n != 0 {
		t.Errorf("Parse of a malformed key allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = apikey.HashOf(raw) }); n != 0 {
		t.Errorf("HashOf allocates %v times", n)
	}
}

func TestMode(t *testing.T) {
	for _, tc := range []struct {
		text string
		mode apikey.Mode
	}{{"live", apikey.Live}, {"test", apikey.Test}} {
		var m apikey.Mode
		if err := m.Set(tc.text); err != nil || m != tc.mode {
			t.Errorf("Set(%q) = %v, %v", tc.text, m, err)
		}
		if got, _ := tc.mode.MarshalText(); string(got) != tc.text {
			t.Errorf("MarshalText = %q, want %q", got, tc.text)
		}
	}
	for _, bad := range []string{"", "Live", "prod", "live "} {
		var m apikey.Mode
		if err := m.UnmarshalText([]byte(bad)); !errors.Is(err, apikey.ErrInvalidMode) {
			t.Errorf("UnmarshalText(%q) = %v, want ErrInvalidMode", bad, err)
		}
	}
	if _, err := apikey.Mode(0).MarshalText(); err == nil {
		t.Error("the zero Mode marshals")
	}
	if got := apikey.Mode(9).String(); got != "Mode(9)" {
		t.Errorf("String = %q", got)
	}
}

func TestHashEqual(t *testing.T) {
	a := apikey.HashOf("ck_live_" + valid32)
	if !a.Equal(a) {
		t.Error("a hash differs from itself")
	}
	for i := range len(a) {
		for _, bit := range []byte{1, 0x80} {
			b := a
			b[i] ^= bit
			if a.Equal(b) || b.Equal(a) {
				t.Errorf("hashes differing at byte %d bit %#x compare equal", i, bit)
			}
		}
	}
	var text apikey.Hash
	if err := text.UnmarshalText([]byte(a.String())); err != nil || text != a {
		t.Errorf("hex round trip = %v, %v", text, err)
	}
	for _, bad := range []string{"", "zz", a.String()[:62], a.String() + "00", "g" + a.String()[1:]} {
		if err := text.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		}
	}
}
