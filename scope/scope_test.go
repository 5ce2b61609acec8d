package scope_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/scope"
)

func TestValid(t *testing.T) {
	tests := []struct {
		scope scope.Scope
		want  bool
	}{
		{"links:read", true},
		{"customers:write", true},
		{"orders.refunds:write", true},
		{"a:b", true},
		{"v2_links:read-all", true},
		{"", false},
		{"links", false},
		{":read", false},
		{"links:", false},
		{"links:read:all", false},
		{"Links:read", false},
		{"links:Read", false},
		{"1links:read", false},
		{"links:1read", false},
		{"links :read", false},
		{"links:re ad", false},
		{"links:re.ad", false},
		{"lïnks:read", false},
		{"links:read\n", false},
		{scope.Scope("a:" + strings.Repeat("b", scope.MaxLen-2)), true},
		{scope.Scope("a:" + strings.Repeat("b", scope.MaxLen-1)), false},
	}
	for _, tc := range tests {
		t.Run(string(tc.scope), func(t *testing.T) {
			if got := tc.scope.Valid(); got != tc.want {
				t.Errorf("Valid(%q) = %v, want %v", tc.scope, got, tc.want)
			}
		})
	}
}

func TestDefaultCatalog(t *testing.T) {
	want := []scope.Scope{
		"customers:read", "customers:write", "events:read", "links:read", "links:write",
		"sessions:read", "sessions:write", "webhooks:read", "webhooks:write",
	}
	got := scope.Default.Scopes()
	if strings.Join(toStrings(got), " ") != strings.Join(toStrings(want), " ") {
		t.Errorf("Default.Scopes() = %v, want the nine scopes of the spec %v", got, want)
	}
	got[0] = "changed:by-caller"
	if scope.Default.Contains("changed:by-caller") {
		t.Error("Scopes returned the catalog's own slice")
	}
}

func toStrings(s []scope.Scope) []string {
	out := make([]string, len(s))
	for i, sc := range s {
		out[i] = string(sc)
	}
	return out
}

func TestCatalogParse(t *testing.T) {
	tests := []struct {
		in      string
		wantErr error
	}{
		{"sessions:write", nil},
		{"events:read", nil},
		{"events:write", scope.ErrUnknown},
		{"admin:all", scope.ErrUnknown},
		{"sessions", scope.ErrMalformed},
		{"Sessions:Write", scope.ErrMalformed},
		{"", scope.ErrMalformed},
		{strings.Repeat("x", 1000) + ":read", scope.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := scope.Default.Parse(tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Parse(%q) = %v, want %v", tc.in, err, tc.wantErr)
			}
			if tc.wantErr == nil {
				if string(got) != tc.in {
					t.Errorf("Parse(%q) = %q", tc.in, got)
				}
				return
			}
			var se *scope.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *scope.Error", err)
			}
			if len(tc.in) <= scope.MaxLen && se.Scope != tc.in {
				t.Errorf("error names %q, want %q", se.Scope, tc.in)
			}
			if len(se.Scope) > scope.MaxLen+3 {
				t.Errorf("error quotes %d bytes of input, want it truncated", len(se.Scope))
			}
			if !strings.Contains(err.Error(), `"`+se.Scope+`"`) {
				t.Errorf("message %q does not name the scope", err)
			}
		})
	}
}

func TestCatalogParseSet(t *testing.T) {
	set, err := scope.Default.ParseSet("links:read", "sessions:write", "links:read")
	if err != nil {
		t.Fatal(err)
	}
	if got := set.String(); got != "links:read sessions:write" {
		t.Errorf("set = %q", got)
	}
	_, err = scope.Default.ParseSet("links:read", "links:delete", "nope")
	var se *scope.Error
	if !errors.As(err, &se) || se.Scope != "links:delete" || !errors.Is(err, scope.ErrUnknown) {
		t.Errorf("ParseSet = %v, want the first bad scope links:delete, unknown", err)
	}
	set, err = scope.Default.ParseText("  events:read\tcustomers:read ")
	if err != nil || set.String() != "customers:read events:read" {
		t.Errorf("ParseText = %q, %v", set, err)
	}
	if err := scope.Default.Check(scope.NewSet("links:read", "x:y")); !errors.Is(err, scope.ErrUnknown) {
		t.Errorf("Check = %v, want ErrUnknown", err)
	}
	if err := scope.Default.Check(scope.NewSet(scope.LinksRead)); err != nil {
		t.Errorf("Check = %v", err)
	}
}

func TestNewCatalog(t *testing.T) {
	c, err := scope.NewCatalog("orders:read", "orders:write", "refunds:create")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Contains("refunds:create") || c.Contains(scope.LinksRead) {
		t.Error("custom catalog membership is wrong")
	}
	for name, scopes := range map[string][]scope.Scope{
		"empty":     nil,
		"malformed": {"orders:read", "Orders"},
		"duplicate": {"orders:read", "orders:read"},
	} {
		if _, err := scope.NewCatalog(scopes...); err == nil {
			t.Errorf("NewCatalog(%s) succeeded", name)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustCatalog did not panic on a malformed scope")
		}
	}()
	scope.MustCatalog("bad")
}

func TestSet(t *testing.T) {
	s := scope.NewSet(scope.SessionsWrite, scope.LinksRead, scope.SessionsWrite)
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"Has member", s.Has(scope.LinksRead), true},
		{"Has non-member", s.Has(scope.LinksWrite), false},
		{"write does not imply read", s.Has(scope.SessionsRead), false},
		{"HasAll members", s.HasAll(scope.LinksRead, scope.SessionsWrite), true},
		{"HasAll with one missing", s.HasAll(scope.LinksRead, scope.EventsRead), false},
		{"HasAll of nothing", s.HasAll(), true},
		{"HasAny with one member", s.HasAny(scope.EventsRead, scope.LinksRead), true},
		{"HasAny of non-members", s.HasAny(scope.EventsRead, scope.LinksWrite), false},
		{"HasAny of nothing", s.HasAny(), false},
		{"empty set Has", scope.Set{}.Has(scope.LinksRead), false},
		{"empty set IsEmpty", scope.Set{}.IsEmpty(), true},
		{"Equal regardless of order", s.Equal(scope.NewSet(scope.LinksRead, scope.SessionsWrite)), true},
		{"not Equal to a subset", s.Equal(scope.NewSet(scope.LinksRead)), false},
		{"zero Equal empty", scope.Set{}.Equal(scope.NewSet()), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	if s.Len() != 2 {
		t.Errorf("Len = %d, want 2", s.Len())
	}
	if got := s.String(); got != "links:read sessions:write" {
		t.Errorf("String = %q, want the sorted form", got)
	}
	if got := s.Missing(scope.EventsRead, scope.LinksRead, scope.LinksWrite); len(got) != 2 || got[0] != scope.EventsRead || got[1] != scope.LinksWrite {
		t.Errorf("Missing = %v", got)
	}
	scopes := s.Scopes()
	scopes[0] = "changed:x"
	if !s.Has(scope.LinksRead) || s.Has("changed:x") {
		t.Error("Scopes returned the set's own slice")
	}
}

func TestSetChecksDoNotAllocate(t *testing.T) {
	s := scope.NewSet(scope.Default.Scopes()...)
	for name, f := range map[string]func(){
		"Has":    func() { _ = s.Has(scope.SessionsWrite) },
		"HasAll": func() { _ = s.HasAll(scope.SessionsWrite, scope.LinksRead, scope.EventsRead) },
		"HasAny": func() { _ = s.HasAny("nope:x", scope.EventsRead) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
}

func TestSetJSON(t *testing.T) {
	s := scope.NewSet(scope.SessionsWrite, scope.LinksRead)
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `["links:read","sessions:write"]` {
		t.Errorf("JSON = %s", out)
	}
	if out, _ := json.Marshal(scope.Set{}); string(out) != "[]" {
		t.Errorf("empty set JSON = %s, want []", out)
	}
	var back scope.Set
	if err := json.Unmarshal([]byte("[]"), &back); err != nil || !back.IsEmpty() {
		t.Errorf("decoding [] = %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`["sessions:write","links:read","links:read"]`), &back); err != nil || !back.Equal(s) {
		t.Errorf("decoded %v, %v; want %v", back, err, s)
	}
	if err := json.Unmarshal([]byte(`null`), &back); err != nil || !back.IsEmpty() {
		t.Errorf("decoding null = %v, %v", back, err)
	}
	for _, bad := range []string{`["links:read","BAD"]`, `"links:read"`, `[1]`} {
		before := scope.NewSet(scope.EventsRead)
		got := before
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("decoding %s succeeded", bad)
		}
		if !got.Equal(before) {
			t.Errorf("a failed decode of %s changed the set to %v", bad, got)
		}
	}
	var fromText scope.Set
	if err := fromText.UnmarshalText([]byte("sessions:write links:read")); err != nil || !fromText.Equal(s) {
		t.Errorf("UnmarshalText = %v, %v", fromText, err)
	}
	if text, _ := s.MarshalText(); string(text) != "links:read sessions:write" {
		t.Errorf("MarshalText = %q", text)
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{"links:read", "links:delete", "Links:read", "a:b", "x", "", ":", "a.b:c", "a:b:c"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sc, err := scope.Default.Parse(in)
		if err == nil {
			if !scope.Default.Contains(sc) || string(sc) != in || !sc.Valid() {
				t.Fatalf("Parse(%q) accepted %q", in, sc)
			}
			return
		}
		var se *scope.Error
		if !errors.As(err, &se) {
			t.Fatalf("Parse(%q) error %T is not *scope.Error", in, err)
		}
		wantMalformed := !scope.Scope(in).Valid()
		if errors.Is(err, scope.ErrMalformed) != wantMalformed || errors.Is(err, scope.ErrUnknown) == wantMalformed {
			t.Fatalf("Parse(%q) = %v: wrong reason", in, err)
		}
		if strings.Count(in, ":") != 1 && !wantMalformed {
			t.Fatalf("%q has %d colons but is Valid", in, strings.Count(in, ":"))
		}
		// Text round trip through a set never panics and never accepts a
		// malformed scope.
		var s scope.Set
		if err := s.UnmarshalText([]byte(in)); err == nil {
			for _, sc := range s.Scopes() {
				if !sc.Valid() {
					t.Fatalf("UnmarshalText(%q) accepted %q", in, sc)
				}
			}
		}
	})
}
