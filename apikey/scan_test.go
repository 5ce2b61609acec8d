package apikey_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
)

func TestFind(t *testing.T) {
	live := "ck_live_" + valid32
	test := "ck_test_" + strings.Repeat("Z", 32)
	sum := withChecksum("ck_live_" + strings.Repeat("7", 32))
	badSum := sum[:len(sum)-1] + string(sum[len(sum)-1]^1)
	type want struct {
		key         string
		mode        apikey.Mode
		checksummed bool
	}
	tests := []struct {
		name   string
		format apikey.Format
		text   string
		want   []want
	}{
		{"none", apikey.Default, "nothing to see here ck_ ck_live_ ck_live_abc", nil},
		{"alone", apikey.Default, live, []want{{live, apikey.Live, false}}},
		{"in a header", apikey.Default, "Authorization: Bearer " + live + "\r\n", []want{{live, apikey.Live, false}}},
		{"quoted, two", apikey.Default, `{"a":"` + live + `","b":"` + test + `"}`, []want{{live, apikey.Live, false}, {test, apikey.Test, false}}},
		{"url", apikey.Default, "https://x.test/?key=" + live + "&y=1", []want{{live, apikey.Live, false}}},
		{"env line", apikey.Default, "CK_KEY=" + live, []want{{live, apikey.Live, false}}},
		{"part of a longer word", apikey.Default, "xck_live_" + valid32, nil},
		{"after an underscore", apikey.Default, "my_ck_live_" + valid32, nil},
		{"too long a run", apikey.Default, live + "A", nil},
		{"too short a run", apikey.Default, live[:len(live)-1], nil},
		{"other product", apikey.Default, "sk_live_" + valid32, nil},
		{"followed by an underscore", apikey.Default, live + "_x", []want{{live, apikey.Live, false}}},
		{"checksummed, plain format", apikey.Default, sum, nil},
		{"checksummed", checksummed, "token: " + sum + ".", []want{{sum, apikey.Live, true}}},
		{"checksum fails: noise", checksummed, "token: " + badSum, nil},
		{"plain key, checksummed format", checksummed, live, []want{{live, apikey.Live, false}}},
		{"overlapping prefix", apikey.Default, "ck_ck_live_" + valid32, nil},
		{"prefix twice", apikey.Default, "ck_live_ ck_live_" + valid32, []want{{live, apikey.Live, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []want
			for _, c := range tc.format.Find(tc.text) {
				got = append(got, want{tc.text[c.Start:c.End], c.Mode, c.Checksummed})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Find = %v, want %v", got, tc.want)
			}
			// The exported pattern, with Find's boundaries, agrees.
			re := tc.format.Regexp()
			var byRegexp []string
			for _, loc := range re.FindAllStringIndex(tc.text, -1) {
				before := loc[0] == 0 || !strings.ContainsAny(tc.text[loc[0]-1:loc[0]], alnum+"_")
				after := loc[1] == len(tc.text) || !strings.ContainsAny(tc.text[loc[1]:loc[1]+1], alnum)
				if before && after {
					if _, err := tc.format.Parse(tc.text[loc[0]:loc[1]]); err == nil {
						byRegexp = append(byRegexp, tc.text[loc[0]:loc[1]])
					}
				}
			}
			var keys []string
			for _, w := range tc.want {
				keys = append(keys, w.key)
			}
			if !reflect.DeepEqual(byRegexp, keys) {
				t.Errorf("Regexp finds %q, want %q", byRegexp, keys)
			}
		})
	}
}

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func TestPattern(t *testing.T) {
	if got, want := apikey.Default.Pattern(), `ck_(?:live|test)_[0-9A-Za-z]{32}`; got != want {
		t.Errorf("Pattern = %s, want %s", got, want)
	}
	if got, want := checksummed.Pattern(), `ck_(?:live|test)_[0-9A-Za-z]{32}(?:[0-9A-Za-z]{6})?`; got != want {
		t.Errorf("checksummed Pattern = %s, want %s", got, want)
	}
}

func TestRedact(t *testing.T) {
	live := "ck_live_" + valid32
	sum := withChecksum("ck_test_" + valid32)
	tests := []struct {
		name   string
		format apikey.Format
		in     string
		want   string
	}{
		{"nothing", apikey.Default, "GET /v1/links 200", "GET /v1/links 200"},
		{"a key", apikey.Default, "auth=Bearer " + live + " ok", "auth=Bearer ck_live_4eC39H[REDACTED] ok"},
		{"two keys", apikey.Default, live + "," + live, "ck_live_4eC39H[REDACTED],ck_live_4eC39H[REDACTED]"},
		{"a mistyped, too long key", apikey.Default, live + "xyz", "ck_live_4eC39H[REDACTED]"},
		{"a truncated key", apikey.Default, live[:20], "ck_live_4eC39H[REDACTED]"},
		{"a display prefix alone", apikey.Default, "key ck_live_4eC39H revoked", "key ck_live_4eC39H revoked"},
		{"a checksummed key", checksummed, "k=" + sum, "k=ck_test_4eC39H[REDACTED]"},
		{"a checksummed key that fails", checksummed, "k=" + sum[:len(sum)-1] + "!", "k=ck_test_4eC39H[REDACTED]!"},
		{"run into a word", apikey.Default, "xck_live_" + valid32, "xck_live_4eC39H[REDACTED]"},
		{"percent-encoded", apikey.Default, "q=key%3Dck_live_" + valid32, "q=key%3Dck_live_4eC39H[REDACTED]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.format.Redact(tc.in); got != tc.want {
				t.Errorf("Redact = %q, want %q", got, tc.want)
			}
		})
	}
	clean := "GET /v1/links?starting_after=ck_live_ 200 in 3ms"
	if n := testing.AllocsPerRun(100, func() { _ = apikey.Default.Redact(clean) }); n != 0 {
		t.Errorf("Redact of clean text allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = apikey.Default.Find(clean) }); n != 0 {
		t.Errorf("Find in clean text allocates %v times", n)
	}
}

func ExampleFormat_Find() {
	text := "curl -H 'Authorization: Bearer ck_test_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh' https://api.example.com"
	for _, c := range apikey.Default.Find(text) {
		fmt.Println(c.Start, c.End, c.Mode)
	}
	fmt.Println(apikey.Default.Redact(text))
	// Output:
	// 31 71 test
	// curl -H 'Authorization: Bearer ck_test_4eC39H[REDACTED]' https://api.example.com
}
