package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/keyward/keyward/problem"
)

// maxBody is the largest request body accepted.
const maxBody = 64 << 10

// currencies maps the accepted ISO 4217 codes to their number of minor
// units (cents): two for most, none for JPY and KRW.
var currencies = map[string]int{
	"AUD": 2, "CAD": 2, "CHF": 2, "DKK": 2, "EUR": 2, "GBP": 2,
	"JPY": 0, "KRW": 0, "NOK": 2, "NZD": 2, "SEK": 2, "USD": 2,
}

// maxAmountDigits is the most digits an amount may have before its
// decimal point.
const maxAmountDigits = 8

// A fieldError names a field by its JSON Pointer (RFC 6901) into the
// request body, and says what is wrong with it.
type fieldError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// invalidBody is the 400 problem of a request body at fault, with the
// fields at fault, if known, in the extension member "errors".
func invalidBody(detail string, errs []fieldError) problem.Problem {
	p := problem.Problem{Status: http.StatusBadRequest, Detail: detail}
	if len(errs) > 0 {
		p.Extensions = map[string]any{"errors": errs}
	}
	return p
}

// decode reads r's JSON body into dst, refusing anything but a single
// JSON object of known fields. On failure it writes the problem and
// returns false.
func decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			problem.Write(w, problem.Problem{Status: http.StatusUnsupportedMediaType, Detail: "Send the body as application/json."})
			return false
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, err2 := dec.Token(); err2 != io.EOF {
			err = errors.New("trailing data")
		}
	}
	if err == nil {
		return true
	}
	var (
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	detail := "The body must be a single JSON object."
	var errs []fieldError
	switch {
	case errors.As(err, &tooLarge):
		problem.Write(w, problem.Problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("The body must be at most %d bytes.", maxBody)})
		return false
	case errors.Is(err, io.EOF):
		detail = "The body is empty; send a JSON object."
	case errors.Is(err, io.ErrUnexpectedEOF):
		detail = "The body is not valid JSON: it ends too early."
	case errors.As(err, &syntax):
		detail = fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		detail = "A field has the wrong JSON type."
		errs = append(errs, fieldError{Pointer: pointer(typeErr.Field), Detail: "must be " + jsonType(typeErr.Type.Kind().String())})
	case errors.As(err, &typeErr):
		detail = "The body must be a JSON object."
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		detail = "The body has an unknown field."
		errs = append(errs, fieldError{Pointer: pointer(name), Detail: "is not a field of this request"})
	}
	problem.Write(w, invalidBody(detail, errs))
	return false
}

// pointer turns encoding/json's dotted field path into a JSON Pointer.
func pointer(field string) string {
	return "/" + strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(field, "~", "~0"), "/", "~1"), ".", "/")
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// validation collects the field errors of a request.
type validation struct{ errs []fieldError }

func (v *validation) add(ptr, detail string) { v.errs = append(v.errs, fieldError{ptr, detail}) }

// failed writes the 400 problem listing the errors, if there are any.
func (v *validation) failed(w http.ResponseWriter) bool {
	if len(v.errs) == 0 {
		return false
	}
	detail := "A field is invalid."
	if len(v.errs) > 1 {
		detail = fmt.Sprintf("%d fields are invalid.", len(v.errs))
	}
	problem.Write(w, invalidBody(detail+" See errors.", v.errs))
	return true
}

// amount checks a {"value","currency"} amount and returns it with its
// value written with the currency's number of decimals ("49.9" becomes
// "49.90").
func (v *validation) amount(ptr string, a *Amount) Amount {
	if a == nil {
		v.add(ptr, `is required: {"value": "49.99", "currency": "USD"}`)
		return Amount{}
	}
	minor, ok := currencies[a.Currency]
	if !ok {
		codes := make([]string, 0, len(currencies))
		for c := range currencies {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		v.add(ptr+"/currency", "must be an ISO 4217 code in capitals, one of "+strings.Join(codes, ", "))
		return Amount{}
	}
	value, ok := canonicalAmount(a.Value, minor)
	if !ok {
		example := "49.99"
		if minor == 0 {
			example = "4999"
		}
		v.add(ptr+"/value", fmt.Sprintf("must be a positive decimal string with at most %d digits before the point and %d after, such as %q", maxAmountDigits, minor, example))
		return Amount{}
	}
	return Amount{Value: value, Currency: a.Currency}
}

// canonicalAmount parses a positive decimal with at most minor decimals
// and returns it with exactly minor decimals.
func canonicalAmount(s string, minor int) (string, bool) {
	whole, frac, hasPoint := strings.Cut(s, ".")
	if whole == "" || len(whole) > maxAmountDigits || !digits(whole) || len(whole) > 1 && whole[0] == '0' {
		return "", false
	}
	if hasPoint && (frac == "" || len(frac) > minor || !digits(frac)) {
		return "", false
	}
	if strings.Trim(whole+frac, "0") == "" {
		return "", false // zero
	}
	if minor == 0 {
		return whole, true
	}
	return whole + "." + frac + strings.Repeat("0", minor-len(frac)), true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// url checks a required absolute http or https URL.
func (v *validation) url(ptr, s string) {
	if s == "" {
		v.add(ptr, "is required: an absolute http or https URL")
		return
	}
	u, err := url.Parse(s)
	if err != nil || len(s) > 2048 || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		v.add(ptr, "must be an absolute http or https URL of at most 2048 characters, without user information")
	}
}

// metadata checks the optional key-value pairs of a session.
func (v *validation) metadata(ptr string, m map[string]string) {
	if len(m) > 50 {
		v.add(ptr, "must have at most 50 keys")
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // report in a stable order
	for _, k := range keys {
		switch {
		case k == "" || len(k) > 40:
			v.add(ptr, "keys must be 1 to 40 characters")
		case len(m[k]) > 500:
			v.add(ptr+"/"+strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1"), "must be at most 500 characters")
		}
	}
}

// text checks a string field of at most max characters.
func (v *validation) text(ptr, s string, required bool, max int) {
	switch {
	case required && strings.TrimSpace(s) == "":
		v.add(ptr, "is required")
	case utf8.RuneCountInString(s) > max:
		v.add(ptr, fmt.Sprintf("must be at most %d characters", max))
	}
}

func (v *validation) email(ptr, s string) {
	if s == "" {
		v.add(ptr, "is required")
		return
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 {
		v.add(ptr, "must be an email address such as ada@example.com")
	}
}

// events checks the event types a webhook endpoint subscribes to.
func (v *validation) events(ptr string, events []string) {
	if len(events) == 0 {
		v.add(ptr, `is required: a list of event types, or ["*"] for all`)
		return
	}
	for i, e := range events {
		if e != "*" && !slices.Contains(eventTypes, e) {
			v.add(fmt.Sprintf("%s/%d", ptr, i), "must be one of "+strings.Join(eventTypes, ", ")+", or *")
		}
	}
}
