package dashboard

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

// maxBody bounds request bodies: a create request is a few hundred bytes.
const maxBody = 64 << 10

// pageSize is the number of keys on one page of the HTML list.
const pageSize = 50

// keyJSON is a record as the JSON API shows it: the record's own JSON
// (which never includes the hash) and its status now.
type keyJSON struct {
	apikey.Record
	Status apikey.Status `json:"status"`
}

func (h *Handler) keyJSON(rec apikey.Record) keyJSON {
	return keyJSON{Record: rec, Status: rec.Status(h.now())}
}

// listJSON is a page of the key list.
type listJSON struct {
	Keys []keyJSON `json:"keys"`
	// NextCursor, passed as ?cursor=, returns the next page; it is absent
	// on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// issuedJSON answers a create or a rotation: the raw key, shown once.
type issuedJSON struct {
	RawKey   string   `json:"raw_key"`
	Key      keyJSON  `json:"key"`
	Replaced *keyJSON `json:"replaced,omitempty"`
}

type createRequest struct {
	Name      string   `json:"name"`
	Mode      string   `json:"mode"`
	Scopes    []string `json:"scopes"`
	ExpiresAt string   `json:"expires_at"`
}

type rotateRequest struct {
	Overlap string `json:"overlap"`
}

// list serves GET /keys: a page of keys, newest first.
func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts, err := listOptions(q)
	if err != nil {
		h.failErr(w, r, "list", err)
		return
	}
	if !wantsJSON(r) && opts.Limit == 0 {
		opts.Limit = pageSize
	}
	opts.Now = h.now()
	page, err := h.keys.List(r.Context(), opts)
	if errors.Is(err, store.ErrInvalidCursor) {
		err = &keyward.InputError{Field: "cursor", Err: errors.New("is not a cursor of this list")}
	}
	if err != nil {
		h.failErr(w, r, "list", err)
		return
	}
	if wantsJSON(r) {
		out := listJSON{Keys: make([]keyJSON, len(page.Records)), NextCursor: page.Next}
		for i, rec := range page.Records {
			out.Keys[i] = h.keyJSON(rec)
		}
		writeJSON(w, http.StatusOK, "application/json", out)
		return
	}
	h.listPage(w, r, q, page)
}

// listOptions reads the list's query parameters: limit, cursor, mode and
// status.
func listOptions(q url.Values) (store.ListOptions, error) {
	var opts store.ListOptions
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return opts, &keyward.InputError{Field: "limit", Err: errors.New("must be a whole number from 1; more than 1000 returns 1000")}
		}
		opts.Limit = n
	}
	if s := q.Get("mode"); s != "" {
		m, err := apikey.ParseMode(s)
		if err != nil {
			return opts, &keyward.InputError{Field: "mode", Err: err}
		}
		opts.Mode = m
	}
	if s := q.Get("status"); s != "" {
		st, err := apikey.ParseStatus(s)
		if err != nil {
			return opts, &keyward.InputError{Field: "status", Err: err}
		}
		opts.Status = st
	}
	opts.Cursor = q.Get("cursor")
	return opts, nil
}

// get serves GET /keys/{id}.
func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	rec, ok := h.record(w, r, "get")
	if !ok {
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, "application/json", h.keyJSON(rec))
		return
	}
	h.keyPage(w, r, "key", rec)
}

// record returns the key named by the path's {id}, or answers the error.
func (h *Handler) record(w http.ResponseWriter, r *http.Request, op string) (apikey.Record, bool) {
	id, ok := h.pathID(w, r)
	if !ok {
		return apikey.Record{}, false
	}
	rec, err := h.keys.Get(r.Context(), id)
	if err != nil {
		h.failErr(w, r, op, err)
		return apikey.Record{}, false
	}
	return rec, true
}

// pathID parses the path's {id}. Text that is not a key ID is a key that
// does not exist: 404.
func (h *Handler) pathID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil || id == uuid.Nil {
		h.fail(w, r, http.StatusNotFound, "No key has this ID.")
		return uuid.UUID{}, false
	}
	return id, true
}

// create serves POST /keys: a JSON body for the API, a form for the page.
func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if wantsJSON(r) {
		if !h.decode(w, r, &req) {
			return
		}
	} else {
		if !h.parseForm(w, r) {
			return
		}
		req = createRequest{Name: r.PostForm.Get("name"), Mode: r.PostForm.Get("mode"), Scopes: r.PostForm["scopes"]}
	}
	p, err := h.createParams(req)
	if err == nil {
		var sec apikey.Secret
		var rec apikey.Record
		sec, rec, err = h.keys.Create(r.Context(), p)
		if err == nil {
			h.report(r.Context(), Event{Action: KeyCreated, Operator: operator(r), Key: rec})
			h.issued(w, r, sec, rec, nil)
			return
		}
	}
	var in *keyward.InputError
	if !wantsJSON(r) && errors.As(err, &in) {
		h.newPage(w, r, http.StatusBadRequest, req, map[string]string{in.Field: formMessage(in)})
		return
	}
	h.failErr(w, r, "create", err)
}

// createParams turns a request into lifecycle parameters. Only the mode
// and the expiry are parsed here; keyward validates the rest.
func (h *Handler) createParams(req createRequest) (keyward.CreateParams, error) {
	p := keyward.CreateParams{Name: req.Name}
	if req.Mode == "" {
		return p, &keyward.InputError{Field: "mode", Err: errors.New(`is required: "live" or "test"`)}
	}
	m, err := apikey.ParseMode(req.Mode)
	if err != nil {
		return p, &keyward.InputError{Field: "mode", Err: err}
	}
	p.Mode = m
	p.Scopes = make([]scope.Scope, len(req.Scopes))
	for i, s := range req.Scopes {
		p.Scopes[i] = scope.Scope(s)
	}
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			return p, &keyward.InputError{Field: "expires_at", Err: errors.New("must be an RFC 3339 time, such as 2030-01-02T15:04:05Z")}
		}
		p.ExpiresAt = t
	}
	return p, nil
}

// issued answers a new key: 201 Created with the raw key, shown this once.
// Nothing that holds the raw key may be stored by a cache, and it is never
// put in a URL: the page shows it in the response to the form's POST.
func (h *Handler) issued(w http.ResponseWriter, r *http.Request, sec apikey.Secret, rec apikey.Record, replaced *apikey.Record) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Location", root(r)+"keys/"+rec.ID.String())
	if wantsJSON(r) {
		out := issuedJSON{RawKey: sec.Reveal(), Key: h.keyJSON(rec)}
		if replaced != nil {
			old := h.keyJSON(*replaced)
			out.Replaced = &old
		}
		writeJSON(w, http.StatusCreated, "application/json", out)
		return
	}
	h.revealPage(w, r, sec, rec, replaced)
}

// revoke serves POST /keys/{id}/revoke. The body, if any, is ignored.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r)
	if !ok {
		return
	}
	rec, err := h.keys.Revoke(r.Context(), id)
	if err == nil {
		h.report(r.Context(), Event{Action: KeyRevoked, Operator: operator(r), Key: rec})
	}
	if wantsJSON(r) {
		if err != nil {
			h.failErr(w, r, "revoke", err)
			return
		}
		writeJSON(w, http.StatusOK, "application/json", h.keyJSON(rec))
		return
	}
	// The page's answer to a second click is the same as to the first:
	// the list, showing the key revoked.
	if err != nil && !errors.Is(err, keyward.ErrAlreadyRevoked) {
		h.failErr(w, r, "revoke", err)
		return
	}
	seeOther(w, r, "keys?"+url.Values{"revoked": {id.String()}}.Encode())
}

// rotate serves POST /keys/{id}/rotate with an overlap: a JSON body
// {"overlap": "24h"} for the API, a form for the page.
func (h *Handler) rotate(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathID(w, r)
	if !ok {
		return
	}
	var req rotateRequest
	if wantsJSON(r) {
		if !h.decode(w, r, &req) {
			return
		}
	} else {
		if !h.parseForm(w, r) {
			return
		}
		req.Overlap = r.PostForm.Get("overlap")
	}
	var err error
	var overlap time.Duration
	switch {
	case req.Overlap == "":
		err = &keyward.InputError{Field: "overlap", Err: errors.New(`is required: a duration such as "24h"; "0s" ends the old key now`)}
	default:
		overlap, err = time.ParseDuration(req.Overlap)
		if err != nil {
			err = &keyward.InputError{Field: "overlap", Err: errors.New(`must be a duration such as "24h"`)}
		}
	}
	if err == nil {
		var sec apikey.Secret
		var rec apikey.Record
		sec, rec, err = h.keys.Rotate(r.Context(), id, overlap)
		if err == nil {
			// Read the old key back for its new expiry. The rotation is done
			// either way: if this read fails, the raw key must still be
			// shown, and the event names the old key by ID only.
			old, gerr := h.keys.Get(r.Context(), id)
			if gerr != nil {
				old = apikey.Record{ID: id}
			}
			h.report(r.Context(), Event{Action: KeyRotated, Operator: operator(r), Key: rec, Replaced: old})
			h.issued(w, r, sec, rec, &old)
			return
		}
	}
	var in *keyward.InputError
	if !wantsJSON(r) && errors.As(err, &in) {
		if rec, ok := h.record(w, r, "rotate"); ok {
			h.rotatePage(w, r, http.StatusBadRequest, rec, req.Overlap, formMessage(in))
		}
		return
	}
	h.failErr(w, r, "rotate", err)
}

// decode reads a JSON object into dst, or answers the problem and returns
// false. Unknown fields, wrong types, trailing data and bodies over maxBody
// are refused; the problem names the field where there is one.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if ct := mediaType(r); ct != "application/json" {
		writeProblem(w, problem{Status: http.StatusUnsupportedMediaType,
			Detail: "Send a JSON object with Content-Type: application/json, or an HTML form."})
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		writeProblem(w, problem{Status: http.StatusRequestEntityTooLarge,
			Detail: "The request body is larger than " + strconv.Itoa(maxBody) + " bytes."})
	case errors.Is(err, io.EOF):
		writeProblem(w, problem{Status: http.StatusBadRequest, Detail: "The request body is empty; send a JSON object."})
	case errors.As(err, &typeErr) && typeErr.Field != "":
		field, _, _ := strings.Cut(typeErr.Field, ".")
		h.failField(w, r, field, errors.New("must be "+jsonKind(typeErr.Type)))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		h.failField(w, r, field, errors.New("is not a field of this request"))
	case errors.As(err, &typeErr):
		writeProblem(w, problem{Status: http.StatusBadRequest, Detail: "The request body must be a JSON object."})
	default:
		writeProblem(w, problem{Status: http.StatusBadRequest, Detail: "The request body is not valid JSON."})
	}
	return false
}

var errTrailing = errors.New("trailing data after the JSON object")

// jsonKind names a Go type as JSON does, for decoding errors.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(jsonKind(t.Elem()), "a ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}

// parseForm parses a form post of at most maxBody bytes, or answers the
// error and returns false.
func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		h.errorPage(w, r, status, "The form could not be read.")
		return false
	}
	return true
}

// formMessage is the message shown next to a form field.
func formMessage(in *keyward.InputError) string {
	switch in.Field {
	case "mode":
		return "Choose Live or Test."
	case "overlap":
		return "Choose when the current key stops working."
	}
	msg := ""
	if in.Err != nil {
		msg = strings.TrimPrefix(in.Err.Error(), "apikey: ")
	}
	if msg == "" {
		return "This field is invalid."
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}
