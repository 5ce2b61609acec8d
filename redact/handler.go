package redact

import (
	"context"
	"log/slog"
	"slices"

	"github.com/keyward/keyward/apikey"
)

// NewHandler returns a [slog.Handler] that redacts API keys of the given
// formats, or of [apikey.Default] if none is given, from every record and
// attribute before passing them on to next.
//
// Each key keeps its display prefix and loses its secret part, as
// [apikey.Format.Redact] does it ("ck_live_abc123[REDACTED]"). The handler
// redacts the message, attribute keys and group names, and attribute values
// of every kind, in groups at any depth: strings, []byte, errors, values
// of [slog.LogValuer] (resolved first), [fmt.Stringer] and values of any
// other type, checked in each form the standard handlers may print them
// in. The package documentation lists what it does not catch.
//
// Attributes given to WithAttrs are resolved and redacted once, when they
// are added, and next receives them redacted. A record with nothing to
// redact is passed on as it is, without allocating; otherwise next
// receives a new record, and the caller's record is never modified.
//
// The handler is safe for concurrent use if next is. NewHandler panics if
// next is nil or a format is the zero [apikey.Format], which would match
// no key.
func NewHandler(next slog.Handler, formats ...apikey.Format) slog.Handler {
	if next == nil {
		panic("redact: nil handler")
	}
	if len(formats) == 0 {
		formats = []apikey.Format{apikey.Default}
	}
	r := &redactor{formats: slices.Clone(formats)}
	for _, f := range formats {
		if f.Product() == "" {
			panic("redact: zero apikey.Format; use apikey.Default or apikey.NewFormat")
		}
		r.leads = append(r.leads, f.Product()+"_")
		r.leadBytes = append(r.leadBytes, []byte(f.Product()+"_"))
	}
	return &handler{next: next, r: r}
}

// handler is the [slog.Handler] that [NewHandler] returns. It is immutable.
type handler struct {
	next slog.Handler
	r    *redactor
}

// Enabled reports whether next handles records at level.
func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on to next with its message and attributes redacted.
//
// A Record shares its attributes with its copies, so Handle never changes
// r: when something needs redacting, it builds a new record holding the
// redacted attributes. Record.Clone would not do, since a Record has no way
// to replace an attribute in place.
func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	msg, dirty := h.r.text(r.Message)

	// First pass: find the first attribute that changes, and stop there.
	// A clean record costs this pass alone and allocates nothing.
	first := -1
	var firstAttr slog.Attr
	i := 0
	r.Attrs(func(a slog.Attr) bool {
		if h.r.clean(a) {
			i++
			return true
		}
		if ra, changed := h.r.attr(a, 0); changed {
			first, firstAttr = i, ra
			return false
		}
		i++
		return true
	})
	if !dirty && first < 0 {
		return h.next.Handle(ctx, r)
	}

	// Second pass: copy the attributes, redacting those from the first
	// change on. Each attribute is redacted once.
	nr := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	i = 0
	r.Attrs(func(a slog.Attr) bool {
		switch {
		case first < 0 || i < first:
			// Clean: checked by the first pass.
		case i == first:
			a = firstAttr
		default:
			a, _ = h.r.attr(a, 0)
		}
		nr.AddAttrs(a)
		i++
		return true
	})
	return h.next.Handle(ctx, nr)
}

// WithAttrs resolves and redacts attrs once, and returns a handler whose
// next has them added.
func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	out := attrs
	copied := false
	for i, a := range attrs {
		ra, changed := h.r.attr(a, 0)
		if !changed {
			continue
		}
		if !copied {
			// The handler owns attrs, but a caller calling WithAttrs
			// directly may not expect it to change: copy on first write.
			out, copied = slices.Clone(attrs), true
		}
		out[i] = ra
	}
	return &handler{next: h.next.WithAttrs(out), r: h.r}
}

// WithGroup returns a handler whose next opens a group with the name
// redacted.
func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	name, _ = h.r.text(name)
	return &handler{next: h.next.WithGroup(name), r: h.r}
}
