package apikey_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
)

func TestNewMetadataLimits(t *testing.T) {
	pairs := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("key%02d", i)] = "v"
		}
		return m
	}
	ok := []struct {
		name string
		m    map[string]string
	}{
		{"nil", nil},
		{"empty", map[string]string{}},
		{"the most keys", pairs(apikey.MaxMetadataPairs)},
		{"the longest key, in characters", map[string]string{strings.Repeat("é", apikey.MaxMetadataKeyLen): "v"}},
		{"the longest value, in characters", map[string]string{"k": strings.Repeat("€", apikey.MaxMetadataValueLen)}},
		{"an empty value", map[string]string{"k": ""}},
		{"spaces inside", map[string]string{"order source": "web shop"}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			md, err := apikey.NewMetadata(tc.m)
			if err != nil {
				t.Fatalf("NewMetadata = %v", err)
			}
			if md.Len() != len(tc.m) {
				t.Errorf("Len = %d, want %d", md.Len(), len(tc.m))
			}
			for k, v := range tc.m {
				if got, ok := md.Get(k); !ok || got != v {
					t.Errorf("Get(%q) = %q, %v; want %q", k, got, ok, v)
				}
			}
		})
	}
	bad := []struct {
		name, want string // want: in the error
		m          map[string]string
	}{
		{"too many keys", "51 keys, at most 50", pairs(apikey.MaxMetadataPairs + 1)},
		{"key too long", "41 characters, at most 40", map[string]string{strings.Repeat("k", apikey.MaxMetadataKeyLen+1): "v"}},
		{"value too long", "501 characters, at most 500", map[string]string{"k": strings.Repeat("v", apikey.MaxMetadataValueLen+1)}},
		{"empty key", "key is empty", map[string]string{"": "v"}},
		{"key with surrounding space", "starts or ends with a space", map[string]string{" k": "v"}},
		{"key with brackets", "'['", map[string]string{"a[b]": "v"}},
		{"key with a control character", "control characters", map[string]string{"a\nb": "v"}},
		{"value with a control character", "control characters", map[string]string{"k": "a\x00b"}},
		{"key with a bidirectional override", "formatting characters", map[string]string{"a\u202Eb": "v"}},
		{"value with a zero-width space", "formatting characters", map[string]string{"k": "pay\u200Bpal"}},
		{"key not UTF-8", "not valid UTF-8", map[string]string{"a\xffb": "v"}},
		{"value not UTF-8", "not valid UTF-8", map[string]string{"k": "a\xffb"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apikey.NewMetadata(tc.m)
			if !errors.Is(err, apikey.ErrInvalidMetadata) {
				t.Fatalf("NewMetadata = %v, want ErrInvalidMetadata", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	// A key too long to be worth repeating is not quoted in the error.
	_, err := apikey.NewMetadata(map[string]string{strings.Repeat("x", 10_000): "v"})
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a 10,000-character key = %d bytes: %.80q", len(err.Error()), err)
	}
}

func TestMetadataIsImmutable(t *testing.T) {
	m := map[string]string{"b": "2", "a": "1"}
	md := apikey.MustMetadata(m)
	m["a"] = "changed"
	m["c"] = "3"
	if v, _ := md.Get("a"); v != "1" || md.Len() != 2 {
		t.Errorf("changing the map changed the metadata: %v", md)
	}
	out := md.Map()
	out["a"] = "changed"
	if v, _ := md.Get("a"); v != "1" {
		t.Errorf("changing Map's result changed the metadata: %v", md)
	}
	var keys []string
	for k := range md.All() {
		keys = append(keys, k)
	}
	if !slices.Equal(keys, []string{"a", "b"}) {
		t.Errorf("All yields %v, want the keys in order", keys)
	}
}

func TestMetadataJSON(t *testing.T) {
	md := apikey.MustMetadata(map[string]string{"z": "last", "a": "<first>"})
	b, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"a":"\u003cfirst\u003e","z":"last"}`; got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
	if got := md.String(); got != string(b) {
		t.Errorf("String = %s, want %s", got, b)
	}
	var back apikey.Metadata
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(md) {
		t.Errorf("round trip = %v, %v; want %v", back, err, md)
	}
	if b, _ := json.Marshal(apikey.Metadata{}); string(b) != "{}" {
		t.Errorf("empty metadata JSON = %s, want {}", b)
	}
	for _, in := range []string{`null`, `{}`} {
		var md apikey.Metadata
		if err := json.Unmarshal([]byte(in), &md); err != nil || !md.IsEmpty() {
			t.Errorf("Unmarshal(%s) = %v, %v; want empty", in, md, err)
		}
	}
	for _, in := range []string{`[]`, `{"k": 1}`, `"text"`, `{"a[0]": "v"}`} {
		var md apikey.Metadata
		if err := json.Unmarshal([]byte(in), &md); !errors.Is(err, apikey.ErrInvalidMetadata) {
			t.Errorf("Unmarshal(%s) = %v, want ErrInvalidMetadata", in, err)
		}
	}
}

func TestMetadataEqual(t *testing.T) {
	a := apikey.MustMetadata(map[string]string{"k": "v"})
	for _, tc := range []struct {
		x, y apikey.Metadata
		want bool
	}{
		{a, a, true},
		{a, apikey.MustMetadata(map[string]string{"k": "v"}), true},
		{apikey.Metadata{}, apikey.MustMetadata(nil), true},
		{a, apikey.MustMetadata(map[string]string{"k": "w"}), false},
		{a, apikey.MustMetadata(map[string]string{"j": "v"}), false},
		{a, apikey.Metadata{}, false},
	} {
		if got := tc.x.Equal(tc.y); got != tc.want {
			t.Errorf("%v.Equal(%v) = %v, want %v", tc.x, tc.y, got, tc.want)
		}
	}
}

func TestMetadataGetDoesNotAllocate(t *testing.T) {
	m := map[string]string{}
	for i := range 10 {
		m[fmt.Sprintf("key%d", i)] = "value"
	}
	md := apikey.MustMetadata(m)
	if n := testing.AllocsPerRun(100, func() {
		if v, ok := md.Get("key7"); !ok || v != "value" {
			t.Fatal("Get failed")
		}
		rec := apikey.Record{Metadata: md}
		_ = rec // a record copies its metadata as one pointer
	}); n != 0 {
		t.Errorf("Get allocates %v times", n)
	}
}

func ExampleNewMetadata() {
	md, err := apikey.NewMetadata(map[string]string{"integration": "woocommerce", "region": "eu"})
	if err != nil {
		panic(err)
	}
	v, _ := md.Get("integration")
	fmt.Println(md.Len(), v, md)

	_, err = apikey.NewMetadata(map[string]string{"note": strings.Repeat("x", 501)})
	fmt.Println(err)
	// Output:
	// 2 woocommerce {"integration":"woocommerce","region":"eu"}
	// apikey: invalid metadata: the value of key "note" has 501 characters, at most 500 are allowed
}
