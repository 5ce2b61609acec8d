package redact

import (
	"bytes"
	"log/slog"
	"strings"

	"github.com/keyward/keyward/apikey"
)

// maxDepth bounds the nesting of groups that a value is redacted to. Only
// a LogValuer that resolves to a group holding itself nests deeper: the
// standard handlers would recurse until the stack overflows; this
// handler prints an error in its place.
const maxDepth = 100

// tooDeep replaces a value nested deeper than maxDepth.
var tooDeep = slog.StringValue("!ERROR: redact: value nested too deep")

// A redactor redacts the keys of its formats. It is immutable.
type redactor struct {
	formats []apikey.Format
	// leads holds "<product>_" of each format, which every key contains,
	// as a string and as bytes.
	leads     []string
	leadBytes [][]byte
}

// text returns s with every key redacted, and whether it changed. When
// nothing changes it returns s itself and does not allocate.
func (r *redactor) text(s string) (string, bool) {
	out := s
	for i := range r.formats {
		// Looking for the lead here first spares almost every string
		// the call and the copy of the Format it costs.
		if strings.Contains(out, r.leads[i]) {
			out = r.formats[i].Redact(out)
		}
	}
	// Redact returns its argument itself when it has nothing to redact:
	// the comparison then stops at the identical pointers.
	return out, out != s
}

// has reports whether s holds something to redact.
func (r *redactor) has(s string) bool {
	_, changed := r.text(s)
	return changed
}

// clean reports, cheaply, that a needs no redaction: neither its key nor
// its value, a string or a kind that holds no text, contains the start of
// a key. False means that a needs the full check of attr.
func (r *redactor) clean(a slog.Attr) bool {
	if r.mayHold(a.Key) {
		return false
	}
	switch a.Value.Kind() {
	case slog.KindString:
		return !r.mayHold(a.Value.String())
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool, slog.KindDuration, slog.KindTime:
		return true
	}
	return false
}

// mayHold reports whether s contains the start of a key of any
// format.
func (r *redactor) mayHold(s string) bool {
	for _, lead := range r.leads {
		if strings.Contains(s, lead) {
			return true
		}
	}
	return false
}

// textBytes is text for a byte slice. It converts b, allocating, only when b
// may hold a key.
func (r *redactor) textBytes(b []byte) (string, bool) {
	if !r.mayHoldBytes(b) {
		return "", false
	}
	return r.text(string(b))
}

// mayHoldBytes reports whether b contains the start of a key of any format. It
// is false for almost all text, and lets callers skip a conversion.
func (r *redactor) mayHoldBytes(b []byte) bool {
	for _, lead := range r.leadBytes {
		if bytes.Contains(b, lead) {
			return true
		}
	}
	return false
}

// attr returns a with its key and value redacted, and whether either
// changed.
func (r *redactor) attr(a slog.Attr, depth int) (slog.Attr, bool) {
	k, kc := r.text(a.Key)
	v, vc := r.value(a.Value, depth)
	if !kc && !vc {
		return a, false
	}
	return slog.Attr{Key: k, Value: v}, true
}

// value returns v redacted, and whether it changed. A LogValuer always
// changes: it is replaced by what it resolves to, redacted, so that what
// was checked is what is printed (a LogValuer may return something else
// the next time it is called).
func (r *redactor) value(v slog.Value, depth int) (slog.Value, bool) {
	switch v.Kind() {
	case slog.KindString:
		if s, changed := r.text(v.String()); changed {
			return slog.StringValue(s), true
		}
	case slog.KindGroup:
		if depth >= maxDepth {
			return tooDeep, true
		}
		return r.group(v, depth+1)
	case slog.KindLogValuer:
		rv, _ := r.value(v.Resolve(), depth)
		return rv, true
	case slog.KindAny:
		return r.anyValue(v)
	}
	// Numbers, booleans, durations and times hold no text.
	return v, false
}

// group redacts the attributes of the group value v, copying them only if
// one changes.
func (r *redactor) group(v slog.Value, depth int) (slog.Value, bool) {
	as := v.Group()
	var out []slog.Attr
	for i, a := range as {
		ra, changed := r.attr(a, depth)
		if !changed {
			continue
		}
		if out == nil {
			out = make([]slog.Attr, len(as))
			copy(out, as)
		}
		out[i] = ra
	}
	if out == nil {
		return v, false
	}
	return slog.GroupValue(out...), true
}
