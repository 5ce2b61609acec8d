package scope

import (
	"encoding/json"
	"slices"
	"strings"
)

// A Set is an immutable set of scopes. The zero value is the empty set.
//
// Membership tests take constant time and never allocate, so a Set can be
// checked on every request. Sets are values: copying one is cheap and the copy
// shares storage that nothing ever modifies.
//
// A Set does not know its catalog. [NewSet] and decoding check only the scope
// grammar; the lifecycle in package keyward checks sets against its catalog
// before a key is created.
type Set struct {
	m      map[Scope]struct{}
	sorted []Scope
}

// NewSet returns the set of the given scopes. Duplicates collapse.
func NewSet(scopes ...Scope) Set {
	if len(scopes) == 0 {
		return Set{}
	}
	m := make(map[Scope]struct{}, len(scopes))
	for _, s := range scopes {
		m[s] = struct{}{}
	}
	sorted := make([]Scope, 0, len(m))
	for s := range m {
		sorted = append(sorted, s)
	}
	slices.Sort(sorted)
	return Set{m: m, sorted: sorted}
}

// Len returns the number of scopes in the set.
func (s Set) Len() int { return len(s.sorted) }

// IsEmpty reports whether the set holds no scope.
func (s Set) IsEmpty() bool { return len(s.sorted) == 0 }

// Has reports whether the set holds sc. Scopes are exact: "x:write" does not
// imply "x:read" (see the package documentation).
func (s Set) Has(sc Scope) bool {
	_, ok := s.m[sc]
	return ok
}

// HasAll reports whether the set holds every one of scopes. It is true when
// scopes is empty.
func (s Set) HasAll(scopes ...Scope) bool {
	for _, sc := range scopes {
		if !s.Has(sc) {
			return false
		}
	}
	return true
}

// HasAny reports whether the set holds at least one of scopes. It is false
// when scopes is empty.
func (s Set) HasAny(scopes ...Scope) bool {
	for _, sc := range scopes {
		if s.Has(sc) {
			return true
		}
	}
	return false
}

// SubsetOf reports whether every scope of s is in t. The empty set is a
// subset of every set.
func (s Set) SubsetOf(t Set) bool {
	for _, sc := range s.sorted {
		if !t.Has(sc) {
			return false
		}
	}
	return true
}

// Missing returns the scopes of want that the set lacks, in the order given.
// It returns nil when none is missing.
func (s Set) Missing(want ...Scope) []Scope {
	var out []Scope
	for _, sc := range want {
		if !s.Has(sc) {
			out = append(out, sc)
		}
	}
	return out
}

// Equal reports whether both sets hold exactly the same scopes.
func (s Set) Equal(t Set) bool { return slices.Equal(s.sorted, t.sorted) }

// Scopes returns the scopes in sorted order. The caller owns the slice.
func (s Set) Scopes() []Scope { return slices.Clone(s.sorted) }

// Strings returns the scopes in sorted order, as strings.
func (s Set) Strings() []string {
	out := make([]string, len(s.sorted))
	for i, sc := range s.sorted {
		out[i] = string(sc)
	}
	return out
}

// String returns the canonical text form: the scopes sorted and separated by
// single spaces, as in OAuth's scope parameter. The empty set is "".
func (s Set) String() string { return strings.Join(s.Strings(), " ") }

// MarshalText returns the canonical text form, [Set.String].
func (s Set) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a space-separated list of scopes. It refuses
// malformed scopes with an [*Error] wrapping [ErrMalformed].
func (s *Set) UnmarshalText(text []byte) error {
	return s.decode(strings.Fields(string(text)))
}

// MarshalJSON encodes the set as a sorted JSON array of strings; the empty
// set is [].
func (s Set) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.Strings())
}

// UnmarshalJSON decodes a JSON array of strings (null is the empty set). It
// refuses malformed scopes with an [*Error] wrapping [ErrMalformed].
func (s *Set) UnmarshalJSON(data []byte) error {
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return err
	}
	return s.decode(list)
}

func (s *Set) decode(list []string) error {
	scopes := make([]Scope, len(list))
	for i, str := range list {
		if !Scope(str).Valid() {
			return refuse(str, ErrMalformed)
		}
		scopes[i] = Scope(str)
	}
	*s = NewSet(scopes...)
	return nil
}
