// Package scope defines API key scopes, the catalogs that declare which
// scopes exist, and [Set], the immutable set of scopes granted to a key.
//
// A scope names a resource and an action, separated by a colon:
// "sessions:write". The nine scopes of the checkout API are declared as
// constants and collected in [Default]. Products with other resources declare
// their own catalog with [NewCatalog].
//
// # Write does not imply read
//
// Scopes are exact. A key holding [SessionsWrite] may create checkout
// sessions but may not list them: it does not hold [SessionsRead]. The
// product documentation lists read and write as separate permissions with
// different access ("Create checkout sessions" against "List and retrieve
// checkout sessions"), and its best practices say a session creator needs
// only sessions:write. Reading is often the more sensitive right (it exposes
// other integrations' data), so granting it silently would break least
// privilege. Every store, the lifecycle and the middleware use the same
// rule: [Set.Has] is plain membership.
package scope

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A Scope is one permission, written resource:action, such as "links:read".
//
// Its grammar: a resource of lowercase letters, digits, '_', '-' or '.',
// starting with a letter; one ':'; an action of lowercase letters, digits,
// '_' or '-', starting with a letter; at most [MaxLen] bytes in all.
type Scope string

// The scopes of the checkout API, as listed in the product documentation.
const (
	LinksRead      Scope = "links:read"      // List and retrieve payment links.
	LinksWrite     Scope = "links:write"     // Create, update, and delete payment links.
	SessionsRead   Scope = "sessions:read"   // List and retrieve checkout sessions.
	SessionsWrite  Scope = "sessions:write"  // Create checkout sessions.
	WebhooksRead   Scope = "webhooks:read"   // List and retrieve webhook endpoints.
	WebhooksWrite  Scope = "webhooks:write"  // Create and delete webhook endpoints.
	EventsRead     Scope = "events:read"     // List and retrieve events.
	CustomersRead  Scope = "customers:read"  // List and retrieve customers.
	CustomersWrite Scope = "customers:write" // Create and update customers.
)

// MaxLen is the longest scope accepted, in bytes.
const MaxLen = 64

// Errors returned when a scope is refused. The returned error is an [*Error]
// naming the scope; test for the reason with [errors.Is].
var (
	// ErrMalformed means the text is not a well-formed resource:action scope.
	ErrMalformed = errors.New("malformed scope")
	// ErrUnknown means the scope is well formed but not in the catalog.
	ErrUnknown = errors.New("unknown scope")
)

// An Error reports a refused scope and why it was refused.
type Error struct {
	// Scope is the refused text, truncated to MaxLen bytes.
	Scope string
	// Err is ErrMalformed or ErrUnknown.
	Err error
}

// Error returns a message naming the refused scope, quoted so that control
// characters in untrusted input cannot forge log lines.
func (e *Error) Error() string {
	return fmt.Sprintf("scope %q: %v", e.Scope, e.Err)
}

// Unwrap returns the reason, for [errors.Is].
func (e *Error) Unwrap() error { return e.Err }

func refuse(s string, reason error) *Error {
	if len(s) > MaxLen {
		s = s[:MaxLen] + "..."
	}
	return &Error{Scope: s, Err: reason}
}

// Valid reports whether s follows the scope grammar. It says nothing about
// whether any catalog declares s.
func (s Scope) Valid() bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	colon := strings.IndexByte(string(s), ':')
	if colon <= 0 {
		return false
	}
	return validPart(string(s[:colon]), true) && validPart(string(s[colon+1:]), false)
}

func validPart(p string, dot bool) bool {
	if p == "" || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == '-':
		case c == '.' && dot:
		default:
			return false
		}
	}
	return true
}

// String returns the scope's text.
func (s Scope) String() string { return string(s) }

// A Catalog is the closed list of scopes a product grants. Keys may hold only
// scopes of the catalog they were created under. A Catalog is immutable and
// safe for concurrent use.
type Catalog struct {
	scopes []Scope // sorted
	known  Set
}

// Default is the catalog of the checkout API: the nine scopes of the product
// documentation.
var Default = MustCatalog(
	LinksRead, LinksWrite,
	SessionsRead, SessionsWrite,
	WebhooksRead, WebhooksWrite,
	EventsRead,
	CustomersRead, CustomersWrite,
)

// NewCatalog returns a catalog of the given scopes. It refuses an empty list,
// malformed scopes and duplicates.
func NewCatalog(scopes ...Scope) (*Catalog, error) {
	if len(scopes) == 0 {
		return nil, errors.New("scope: a catalog needs at least one scope")
	}
	m := make(map[Scope]struct{}, len(scopes))
	for _, s := range scopes {
		if !s.Valid() {
			return nil, refuse(string(s), ErrMalformed)
		}
		if _, dup := m[s]; dup {
			return nil, fmt.Errorf("scope: %q is listed twice in the catalog", s)
		}
		m[s] = struct{}{}
	}
	sorted := slices.Clone(scopes)
	slices.Sort(sorted)
	return &Catalog{scopes: sorted, known: Set{m: m}}, nil
}

// MustCatalog is like [NewCatalog] but panics on error. It is meant for
// package-level variables.
func MustCatalog(scopes ...Scope) *Catalog {
	c, err := NewCatalog(scopes...)
	if err != nil {
		panic(err)
	}
	return c
}

// Scopes returns the catalog's scopes in sorted order. The caller owns the
// returned slice.
func (c *Catalog) Scopes() []Scope { return slices.Clone(c.scopes) }

// Contains reports whether the catalog declares s.
func (c *Catalog) Contains(s Scope) bool { return c.known.Has(s) }

// Parse returns the scope written s, or an [*Error] wrapping [ErrMalformed]
// or [ErrUnknown].
func (c *Catalog) Parse(s string) (Scope, error) {
	sc := Scope(s)
	if !sc.Valid() {
		return "", refuse(s, ErrMalformed)
	}
	if !c.Contains(sc) {
		return "", refuse(s, ErrUnknown)
	}
	return sc, nil
}

// Check returns nil if every scope in set is declared by the catalog, and
// otherwise an [*Error] naming the first offending scope in sorted order.
func (c *Catalog) Check(set Set) error {
	for _, s := range set.Scopes() {
		if _, err := c.Parse(string(s)); err != nil {
			return err
		}
	}
	return nil
}

// ParseSet parses each string with [Catalog.Parse] and returns their set.
// Each string holds one scope; duplicates collapse. It returns the error of
// the first refused scope.
func (c *Catalog) ParseSet(scopes ...string) (Set, error) {
	list := make([]Scope, 0, len(scopes))
	for _, s := range scopes {
		sc, err := c.Parse(s)
		if err != nil {
			return Set{}, err
		}
		list = append(list, sc)
	}
	return NewSet(list...), nil
}

// ParseText parses a space-separated list of scopes, the form of OAuth's
// scope parameter and of [Set.String], with [Catalog.ParseSet].
func (c *Catalog) ParseText(text string) (Set, error) {
	return c.ParseSet(strings.Fields(text)...)
}
