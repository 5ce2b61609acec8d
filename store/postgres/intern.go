package postgres

import (
	"strings"
	"sync"

	"github.com/keyward/keyward/scope"
)

// Interned scope sets: most keys of an application share a handful of
// scope sets, and parsing one (splitting the text, checking each scope,
// building the set's map and sorted slice) cost five allocations a lookup.
// A [scope.Set] is immutable, so every record read with the same stored
// scopes can share one.
const (
	// maxScopeSets bounds the number of sets a table keeps: a table whose
	// keys hold more distinct sets than that evicts one at random for
	// each new one, and parses what it misses.
	maxScopeSets = 512
	// maxScopeText bounds the text of a set the table keeps (a few dozen
	// scopes; at most 128), so that the table holds, whatever the rows
	// hold, at most maxScopeSets sets of at most that many bytes: a few
	// MiB at worst, some kiB for the usual handful of sets. A longer set
	// is parsed each time it is read.
	maxScopeText = 512
)

// scopeSets is the table of the process: sets are the same whatever the
// store or table they were read from.
var scopeSets = newScopeTable(maxScopeSets, maxScopeText)

// A scopeTable maps the stored text of scope sets (as array_to_string(scopes,
// ' ') gives it) to their parsed sets. It is safe for concurrent use, and
// looking a set up allocates nothing.
type scopeTable struct {
	maxSets, maxText int

	mu   sync.RWMutex
	sets map[string]scope.Set
}

func newScopeTable(maxSets, maxText int) *scopeTable {
	return &scopeTable{maxSets: maxSets, maxText: maxText, sets: make(map[string]scope.Set)}
}

// set returns the set of text, parsed as [scope.Set.UnmarshalText] parses
// it: the table's if it holds it, else a new one, which it then keeps if
// text is short enough. text may be part of a larger string: the table
// keeps a copy. A text that does not parse is not kept.
func (t *scopeTable) set(text string) (scope.Set, error) {
	if text == "" {
		return scope.Set{}, nil
	}
	t.mu.RLock()
	s, ok := t.sets[text]
	t.mu.RUnlock()
	if ok {
		return s, nil
	}
	if err := s.UnmarshalText([]byte(text)); err != nil {
		return scope.Set{}, err
	}
	if len(text) > t.maxText {
		return s, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if kept, ok := t.sets[text]; ok { // another lookup got there first
		return kept, nil
	}
	if len(t.sets) >= t.maxSets {
		for k := range t.sets { // the map's order: an arbitrary victim
			delete(t.sets, k)
			break
		}
	}
	t.sets[strings.Clone(text)] = s
	return s, nil
}

// len returns the number of sets the table holds.
func (t *scopeTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.sets)
}
