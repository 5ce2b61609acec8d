package redact

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"sync"
)

// anyValue redacts a value of kind [slog.KindAny]. Handlers print such a
// value in one of several forms: its Error text, its MarshalText, its
// bytes, fmt's "%+v" (the text handler, most third-party handlers) or its
// JSON encoding (the JSON handler, which, unlike "%+v", follows pointers
// nested in structs, maps and slices). A value is passed on unchanged when
// none of these forms holds anything to redact.
//
// A value that does is replaced: strings, []byte, errors and others by the
// redacted text they would be logged as (an error by its redacted Error
// text: the error itself does not reach next), and maps and slices of
// strings, such as an [http.Header], by a redacted copy of the same type,
// which prints as the original would.
func (r *redactor) anyValue(v slog.Value) (slog.Value, bool) {
	switch x := v.Any().(type) {
	case nil:
		return v, false
	case []byte:
		if s, changed := r.textBytes(x); changed {
			return slog.StringValue(s), true
		}
		return v, false
	case http.Header:
		return changedValue(redactMultiMap(r, x))
	case url.Values:
		return changedValue(redactMultiMap(r, x))
	case map[string][]string:
		return changedValue(redactMultiMap(r, x))
	case map[string]string:
		return changedValue(redactMap(r, x))
	case []string:
		return changedValue(redactStrings(r, x))
	case *url.URL:
		if x != nil && !r.urlMayHold(x) {
			return v, false
		}
	case url.URL:
		if !r.urlMayHold(&x) {
			return v, false
		}
	case error:
		_, f := x.(fmt.Formatter)
		_, j := x.(json.Marshaler)
		_, t := x.(encoding.TextMarshaler)
		if f || j || t {
			break // it may print more than its Error text
		}
		msg, ok := protect(x.Error)
		if !ok {
			break
		}
		if s, changed := r.text(msg); changed {
			return slog.StringValue(s), true
		}
		return v, false
	default:
		if rv, changed, known := r.plain(v, x); known {
			return rv, changed
		}
	}
	return r.other(v, v.Any())
}

// urlMayHold reports whether a field of u contains the start of a key. A
// URL whose fields do not is clean in every form: its String joins the
// fields with separators that cannot continue a key's start, and escapes
// only into '%' and upper-case hexadecimal digits, which no product prefix
// holds.
func (r *redactor) urlMayHold(u *url.URL) bool {
	pw, _ := u.User.Password()
	for _, s := range [...]string{u.Scheme, u.Opaque, u.User.Username(), pw, u.Host, u.Path, u.RawPath, u.RawQuery, u.Fragment, u.RawFragment} {
		if r.mayHold(s) {
			return true
		}
	}
	return false
}

// changedValue wraps the result of a redacting function as a Value.
func changedValue[T any](x T, changed bool) (slog.Value, bool) {
	if !changed {
		return slog.Value{}, false
	}
	return slog.AnyValue(x), true
}

// plain redacts, without formatting it, a value of a type without
// exported methods whose underlying type is a boolean, a number, a
// string or a []byte: every handler prints those as they are. known is
// false for any other value.
func (r *redactor) plain(v slog.Value, x any) (_ slog.Value, changed, known bool) {
	t := reflect.TypeOf(x)
	if t.NumMethod() != 0 {
		return v, false, false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return v, false, true
	case reflect.String:
		if s, changed := r.text(reflect.ValueOf(x).String()); changed {
			return slog.StringValue(s), true, true
		}
		return v, false, true
	case reflect.Slice:
		if t.Elem().Kind() != reflect.Uint8 {
			return v, false, false
		}
		if s, changed := r.textBytes(reflect.ValueOf(x).Bytes()); changed {
			return slog.StringValue(s), true, true
		}
		return v, false, true
	}
	return v, false, false
}

// other redacts any other value: it formats x in each form a handler may
// print it in (see anyValue), and, if one holds a key, replaces x by the
// redacted text it would be logged as.
func (r *redactor) other(v slog.Value, x any) (slog.Value, bool) {
	sc := scratchPool.Get().(*scratch)
	defer sc.free()

	fmt.Fprintf(&sc.text, "%+v", x) // fmt recovers from panics itself
	dirty := r.hasBytes(sc.text.Bytes())

	// Error text: the JSON handler prints it. A panic shows as "<nil>" or
	// as the panic fmt printed above.
	if err, ok := x.(error); ok && !dirty {
		if msg, ok := protect(err.Error); ok {
			dirty = r.has(msg)
		}
	}
	// MarshalText: the text handler prints it, or its error.
	if tm, ok := x.(encoding.TextMarshaler); ok && !dirty {
		dirty = r.dirtyText(tm)
	}
	// Bytes: the text handler prints a []byte of any named type as text.
	if b, ok := byteSlice(x); ok && !dirty {
		_, dirty = r.textBytes(b)
	}
	// JSON, or its error.
	if !dirty {
		dirty = r.dirtyJSON(sc, x)
	}
	if !dirty {
		return v, false
	}
	s, _ := r.text(shown(sc, x))
	return slog.StringValue(s), true
}

// hasBytes reports whether b holds something to redact.
func (r *redactor) hasBytes(b []byte) bool {
	_, changed := r.textBytes(b)
	return changed
}

// dirtyText reports whether the MarshalText of tm, or its error, holds
// something to redact. A panic counts as dirty: the handler would print
// the panic value, which this does not see.
func (r *redactor) dirtyText(tm encoding.TextMarshaler) (dirty bool) {
	defer func() {
		if recover() != nil {
			dirty = true
		}
	}()
	b, err := tm.MarshalText()
	if err != nil {
		return r.has(err.Error())
	}
	return r.hasBytes(b)
}

// dirtyJSON reports whether the JSON encoding of x, as the JSON handler
// writes it, or its error, holds something to redact. A panic counts as
// dirty.
//
// JSON escapes a control character before a key as, say, \n: Redact then
// reads the 'n' as the end of a longer token and sees no key, though the
// key is there in clear. The escapes are blanked out before checking.
func (r *redactor) dirtyJSON(sc *scratch, x any) (dirty bool) {
	defer func() {
		if recover() != nil {
			dirty = true
		}
	}()
	if err := sc.enc.Encode(x); err != nil {
		return r.has(err.Error())
	}
	b := sc.json.Bytes()
	if !r.mayHoldBytes(b) {
		return false
	}
	return r.hasBytes(blankEscapes(b))
}

// blankEscapes returns a copy of the JSON text b with each escape sequence
// replaced by spaces.
func blankEscapes(b []byte) []byte {
	out := bytes.Clone(b)
	for i := 0; i < len(out); i++ {
		if out[i] != '\\' {
			continue
		}
		n := 2
		if i+1 < len(out) && out[i+1] == 'u' {
			n = 6
		}
		for j := i; j < i+n && j < len(out); j++ {
			out[j] = ' '
		}
		i += n - 1
	}
	return out
}

// shown returns the text x is logged as, in place of x when it holds a
// key: its Error text, else its MarshalText, else its bytes, else its
// "%+v", which sc.text holds.
func shown(sc *scratch, x any) string {
	if err, ok := x.(error); ok {
		if msg, ok := protect(err.Error); ok {
			return msg
		}
	}
	if tm, ok := x.(encoding.TextMarshaler); ok {
		if s, ok := marshalText(tm); ok {
			return s
		}
	}
	if b, ok := byteSlice(x); ok {
		return string(b)
	}
	return sc.text.String()
}

// marshalText returns the MarshalText of tm, or false if it fails or
// panics.
func marshalText(tm encoding.TextMarshaler) (s string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	b, err := tm.MarshalText()
	if err != nil {
		return "", false
	}
	return string(b), true
}

// protect returns f(), or false if f panics, as a method of a nil pointer
// does.
func protect(f func() string) (s string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return f(), true
}

// byteSlice returns x as a []byte if its underlying type is []byte, as
// the text handler does.
func byteSlice(x any) ([]byte, bool) {
	if b, ok := x.([]byte); ok {
		return b, true
	}
	t := reflect.TypeOf(x)
	if t != nil && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
		return reflect.ValueOf(x).Bytes(), true
	}
	return nil, false
}

// redactStrings returns a redacted copy of ss, or ss itself if nothing
// changes.
func redactStrings[S ~[]string](r *redactor, ss S) (S, bool) {
	i := 0
	for ; i < len(ss); i++ {
		if _, changed := r.text(ss[i]); changed {
			break
		}
	}
	if i == len(ss) {
		return ss, false
	}
	out := make(S, len(ss))
	copy(out, ss)
	for ; i < len(ss); i++ {
		out[i], _ = r.text(ss[i])
	}
	return out, true
}

// redactMultiMap returns a redacted copy of m, such as an [http.Header], or
// m itself if nothing changes.
func redactMultiMap[M ~map[string][]string](r *redactor, m M) (M, bool) {
	if !multiMapDirty(r, m) {
		return m, false
	}
	out := make(M, len(m))
	for k, vs := range m {
		k, _ = r.text(k)
		vs, _ = redactStrings(r, vs)
		out[k] = vs
	}
	return out, true
}

// multiMapDirty reports whether a key or value of m holds something to
// redact.
func multiMapDirty[M ~map[string][]string](r *redactor, m M) bool {
	for k, vs := range m {
		if r.has(k) {
			return true
		}
		for _, s := range vs {
			if r.has(s) {
				return true
			}
		}
	}
	return false
}

// redactMap returns a redacted copy of m, or m itself if nothing changes.
func redactMap[M ~map[string]string](r *redactor, m M) (M, bool) {
	if !mapDirty(r, m) {
		return m, false
	}
	out := make(M, len(m))
	for k, s := range m {
		k, _ = r.text(k)
		out[k], _ = r.text(s)
	}
	return out, true
}

// mapDirty reports whether a key or value of m holds something to redact.
func mapDirty[M ~map[string]string](r *redactor, m M) bool {
	for k, s := range m {
		if r.has(k) || r.has(s) {
			return true
		}
	}
	return false
}

// scratch holds the buffers that other formats a value into. Formatting
// into pooled buffers keeps the check of a clean value from allocating
// the text it checks.
type scratch struct {
	text bytes.Buffer // "%+v"
	json bytes.Buffer // JSON, with a trailing newline
	enc  *json.Encoder
}

var scratchPool = sync.Pool{New: func() any {
	sc := new(scratch)
	sc.enc = json.NewEncoder(&sc.json)
	sc.enc.SetEscapeHTML(false) // as the JSON handler
	return sc
}}

// maxScratch is the largest buffer returned to the pool, to bound the
// memory that one huge value keeps.
const maxScratch = 64 << 10

// free wipes the buffers, which may hold keys, and returns them to the
// pool.
func (sc *scratch) free() {
	clear(sc.text.Bytes())
	clear(sc.json.Bytes())
	sc.text.Reset()
	sc.json.Reset()
	if sc.text.Cap() > maxScratch || sc.json.Cap() > maxScratch {
		return
	}
	scratchPool.Put(sc)
}
