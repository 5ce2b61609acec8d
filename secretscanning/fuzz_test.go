package secretscanning

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzParseMatches checks that the body parser never panics, accepts only
// the documented shape, stays within its limit, and reads back what it
// accepted.
func FuzzParseMatches(f *testing.F) {
	for _, seed := range []string{
		`[{"source":"commit","token":"some_token","type":"some_type","url":"https://example.com/base-repo-url/"}]`,
		`[{"token":"ck_live_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh","type":"keyward_api_key","url":"","source":"content"},{"token":"x","type":"t"}]`,
		`[]`,
		` [ ] `,
		`[{"token":"a","type":"t","extra":{"nested":[1,2,{"x":null}]}}]`,
		`[{"TOKEN":"a","Type":"t"}]`,
		`[{"token":"\u00e9\ud800","type":"t"}]`,
		`[{"token":"a","type":"t"},{"token":"a","type":"t"},{"token":"a","type":"t"},{"token":"a","type":"t"}]`,
		`[{"token":"a","type":"t"}] x`,
		`[{"token":"a","type":"t"}`,
		`[null]`,
		`[{"token":null,"type":"t"}]`,
		`[{"token":1,"type":"t"}]`,
		`{"token":"a","type":"t"}`,
		`null`,
		``,
		`[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`,
	} {
		f.Add([]byte(seed))
	}
	const max = 3
	f.Fuzz(func(t *testing.T, body []byte) {
		matches, err := parseMatches(body, max)
		if err != nil {
			if !errors.Is(err, errNotArray) && !errors.Is(err, errMatchShape) && !errors.Is(err, errTooMany) {
				t.Fatalf("unexpected error %v", err)
			}
			if matches != nil {
				t.Fatalf("matches returned with error %v", err)
			}
			return
		}
		if len(matches) > max {
			t.Fatalf("%d matches, over the limit of %d", len(matches), max)
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		for _, m := range matches {
			if m.Token == "" || m.Type == "" {
				t.Fatalf("accepted a match without token or type: %+v", m)
			}
		}
		// What was accepted reads back the same once written again.
		wire := make([]map[string]string, len(matches))
		for i, m := range matches {
			wire[i] = map[string]string{"token": m.Token, "type": m.Type, "url": m.URL, "source": m.Source}
		}
		again, err := json.Marshal(wire)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseMatches(again, max)
		if err != nil {
			t.Fatalf("re-encoded matches refused: %v", err)
		}
		if len(matches) == 0 {
			back = matches // nil and empty are the same here
		}
		if !reflect.DeepEqual(back, matches) {
			t.Fatalf("round trip: %+v, want %+v", back, matches)
		}
	})
}
