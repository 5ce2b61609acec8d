package dashboard

import (
	"bufio"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/problem"
	"github.com/keyward/keyward/scope"
)

// maxBody bounds request bodies: a create request is a few hundred bytes,
// a few kilobytes with metadata.
const maxBody = 64 << 10

// pageSize is the number of keys on one page of the HTML list.
const pageSize = 50

// keyJSON is a record as the JSON API shows it: the record's own JSON
// (which never includes the hash) and its status now.
type keyJSON = apikey.RecordAt

func (h *Handler) keyJSON(rec apikey.Record) keyJSON { return rec.At(h.keys.Now()) }

func (h *Handler) keysJSON(recs []apikey.Record) []keyJSON {
	out := make([]keyJSON, len(recs))
	for i, rec := range recs {
		out[i] = h.keyJSON(rec)
	}
	return out
}

// listJSON is a page of the key list, or the keys revoked by revoke-all.
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

// repeatedJSON answers the repeat of an idempotent create: the key the
// first request created, without its raw key.
type repeatedJSON struct {
	Key     keyJSON `json:"key"`
	Message string  `json:"message"`
}

// repeatedMessage is the message of repeatedJSON.
const repeatedMessage = "A key was already created with this Idempotency-Key; nothing was created. " +
	"Its raw key was shown once, in the response to the first request, and is never shown again."

type createRequest struct {
	Name      string            `json:"name"`
	Mode      string            `json:"mode"`
	Scopes    []string          `json:"scopes"`
	Metadata  map[string]string `json:"metadata"`
	ExpiresAt string            `json:"expires_at"`
	// Canary asks for a tripwire (see keyward.CreateParams.Canary): the
	// form's checkbox, checked.
	Canary bool `json:"canary"`
	// Policy is the key's limits in the library's JSON form
	// (apikey.Policy); absent or null for none.
	Policy json.RawMessage `json:"policy"`
	// IdempotencyKey is the Idempotency-Key header, or the form's
	// one-time token.
	IdempotencyKey string `json:"-"`

	// limits are the form's limit fields as entered, and policy what
	// they say.
	limits policyForm
	policy *apikey.Policy
}

// updateRequest is a PATCH: an absent (or null) field is unchanged.
type updateRequest struct {
	Name      *string           `json:"name"`
	Scopes    []string          `json:"scopes"`
	Metadata  map[string]string `json:"metadata"`
	ExpiresAt string            `json:"expires_at"`
	// Policy replaces the key's limits, in the library's JSON form; {}
	// removes them.
	Policy json.RawMessage `json:"policy"`

	// policy is what the edit form's limit fields say: nil if the form
	// has none.
	policy *apikey.Policy
}

type rotateRequest struct {
	Overlap   string `json:"overlap"`
	ExpiresAt string `json:"expires_at"`
}

// revokeRequest is a revocation or a revocation of all keys: the body is
// optional, and so is the reason.
type revokeRequest struct {
	Reason string `json:"reason"`
}

// tripsJSON is the uses of a canary key, newest first.
type tripsJSON struct {
	Trips []apikey.Trip `json:"trips"`
}

// list serves GET /keys: a page of the account's keys, newest first.
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
	page, err := h.owner(r).List(r.Context(), opts)
	if err != nil {
		h.failErr(w, r, "list", err)
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, listJSON{Keys: h.keysJSON(page.Keys), NextCursor: page.Next})
		return
	}
	h.listPage(w, r, q, page)
}

// listOptions reads the list's query parameters: limit, cursor, mode and
// status.
func listOptions(q url.Values) (keyward.ListOptions, error) {
	var opts keyward.ListOptions
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
		writeJSON(w, http.StatusOK, h.keyJSON(rec))
		return
	}
	h.keyPage(w, r, rec)
}

// record returns the account's key named by the path's {id}, or answers
// 404: an ID that is not a key ID, that no key has, or that another
// account's key has, all get the same answer.
func (h *Handler) record(w http.ResponseWriter, r *http.Request, op string) (apikey.Record, bool) {
	id, err := keyward.ParseID(r.PathValue("id"))
	if err != nil {
		h.fail(w, r, http.StatusNotFound, notFound)
		return apikey.Record{}, false
	}
	rec, err := h.owner(r).Get(r.Context(), id)
	if err != nil {
		h.failErr(w, r, op, err)
		return apikey.Record{}, false
	}
	return rec, true
}

// changeable returns the key named by the path's {id} for a change (edit,
// rotate, revoke, and their pages), or answers the refusal, in this order:
// a role that may change no key gets 403 whatever the ID; then an ID the
// account does not have gets 404 ([Handler.record]); then a key of a mode
// the role may not change gets 403. No answer depends on another account's
// keys.
func (h *Handler) changeable(w http.ResponseWriter, r *http.Request, op string) (apikey.Record, bool) {
	role := operator(r).Role
	if !role.canCreate() {
		h.forbid(w, r, role.refusal(apikey.Test))
		return apikey.Record{}, false
	}
	rec, ok := h.record(w, r, op)
	if !ok {
		return apikey.Record{}, false
	}
	if !role.CanChange(rec.Mode) {
		h.forbid(w, r, role.refusal(rec.Mode))
		return apikey.Record{}, false
	}
	return rec, true
}

// create serves POST /keys: a JSON body for the API, a form for the page.
func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	role := operator(r).Role
	if !role.canCreate() {
		h.forbid(w, r, role.refusal(apikey.Test))
		return
	}
	form := !wantsJSON(r)
	var req createRequest
	var rows []metaRow
	var mdErr error
	var errs map[string]string // the form's, by field
	if form {
		if !h.parseForm(w, r) {
			return
		}
		f := r.PostForm
		req = createRequest{Name: f.Get("name"), Mode: f.Get("mode"), Scopes: f["scopes"],
			ExpiresAt: f.Get("expires_at"), IdempotencyKey: f.Get("idempotency_key"),
			Canary: f.Get("canary") != ""} // a checkbox: sent only if checked
		rows, req.Metadata, mdErr = formMetadata(f)
		req.limits, req.policy, errs = formPolicy(f)
	} else {
		if !h.decode(w, r, &req) {
			return
		}
		req.IdempotencyKey = r.Header.Get("Idempotency-Key")
	}
	refuse := func(err error) {
		var in *keyward.InputError
		if form && errors.As(err, &in) {
			h.newPage(w, r, fieldStatus(in), req, rows, map[string]string{in.Field: formMessage(in.Field, in.Err)})
			return
		}
		h.failErr(w, r, "create", err)
	}
	mode, err := parseMode(req.Mode)
	if err != nil {
		refuse(err)
		return
	}
	if !role.CanChange(mode) {
		if form {
			h.logRefusal(r)
			h.newPage(w, r, http.StatusForbidden, req, rows, map[string]string{"mode": role.refusal(mode)})
			return
		}
		h.forbid(w, r, role.refusal(mode))
		return
	}
	p, err := createParams(req, mode, form)
	if form {
		// Every field the form got wrong at once, the limits' too.
		if errs = withFieldError(withFieldError(errs, mdErr), err); len(errs) > 0 {
			h.newPage(w, r, http.StatusBadRequest, req, rows, errs)
			return
		}
	}
	if err != nil {
		refuse(err)
		return
	}
	sec, rec, err := h.owner(r).Create(r.Context(), p)
	switch {
	case err == nil:
		h.issued(w, r, sec, rec, nil)
	case errors.Is(err, keyward.ErrAlreadyCreated):
		h.repeated(w, r, rec)
	default:
		refuse(err)
	}
}

// fieldStatus is the status of a form shown again for an invalid field.
func fieldStatus(in *keyward.InputError) int {
	if errors.Is(in.Err, keyward.ErrIdempotencyConflict) {
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadRequest
}

// parseMode reads a mode, which is required.
func parseMode(s string) (apikey.Mode, error) {
	if s == "" {
		return 0, &keyward.InputError{Field: "mode", Err: errors.New(`is required: "live" or "test"`)}
	}
	m, err := apikey.ParseMode(s)
	if err != nil {
		return 0, &keyward.InputError{Field: "mode", Err: err}
	}
	return m, nil
}

// createParams turns a request into lifecycle parameters. Only the mode,
// the expiry and the policy's JSON are parsed here; keyward validates the
// rest.
func createParams(req createRequest, mode apikey.Mode, form bool) (keyward.CreateParams, error) {
	p := keyward.CreateParams{
		Name:           req.Name,
		Mode:           mode,
		Scopes:         scopes(req.Scopes),
		Metadata:       req.Metadata,
		IdempotencyKey: req.IdempotencyKey,
		Canary:         req.Canary,
		Policy:         req.policy,
	}
	var err error
	if !form {
		if p.Policy, err = parsePolicyJSON(req.Policy); err != nil {
			return p, err
		}
	}
	p.Policy = noPolicy(p.Policy)
	p.ExpiresAt, err = parseExpiry(req.ExpiresAt, form)
	return p, err
}

// withFieldError adds the message of err, an *keyward.InputError, to a
// form's errors by field; it returns errs as it is for any other error.
func withFieldError(errs map[string]string, err error) map[string]string {
	var in *keyward.InputError
	if !errors.As(err, &in) {
		return errs
	}
	if errs == nil {
		errs = map[string]string{}
	}
	errs[in.Field] = formMessage(in.Field, in.Err)
	return errs
}

// scopes converts the scopes of a request to a set; keyward checks them
// against the catalog.
func scopes(list []string) scope.Set {
	out := make([]scope.Scope, len(list))
	for i, s := range list {
		out[i] = scope.Scope(s)
	}
	return scope.NewSet(out...)
}

// parseExpiry reads an optional expiry: an RFC 3339 time from the JSON
// API, a date from a form's date field, meaning 00:00 UTC on that day.
func parseExpiry(s string, form bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if form {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return time.Time{}, &keyward.InputError{Field: "expires_at", Err: errors.New("must be a date such as 2030-01-31")}
		}
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &keyward.InputError{Field: "expires_at", Err: errors.New("must be an RFC 3339 time, such as 2030-01-02T15:04:05Z")}
	}
	return t, nil
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
		writeJSON(w, http.StatusCreated, out)
		return
	}
	h.revealPage(w, r, sec, rec, replaced)
}

// repeated answers the repeat of an idempotent create, such as the reload
// of the page that showed a new key: 200 with the key the first request
// created, and the reminder that its raw key was shown once. It never
// shows a raw key.
func (h *Handler) repeated(w http.ResponseWriter, r *http.Request, rec apikey.Record) {
	h.logger.LogAttrs(r.Context(), slog.LevelInfo, "dashboard: repeated create answered with the key it created",
		slog.Any("operator", operator(r)), slog.Any("key", rec))
	w.Header().Set("Idempotent-Replayed", "true")
	w.Header().Set("Location", root(r)+"keys/"+rec.ID.String())
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, repeatedJSON{Key: h.keyJSON(rec), Message: repeatedMessage})
		return
	}
	h.repeatPage(w, r, rec)
}

// update serves PATCH /keys/{id} (JSON) and POST /keys/{id}/edit (the
// edit form, or JSON): it changes the name, the metadata, the scopes
// (narrowing only), the expiry (earlier only) or the limits.
func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	rec, ok := h.changeable(w, r, "update")
	if !ok {
		return
	}
	form := r.Method == http.MethodPost && isForm(r)
	var req updateRequest
	var rows []metaRow
	var mdErr error
	var errs map[string]string // the form's, by field
	limits := newPolicyForm(rec.Policy)
	if form {
		if !h.parseForm(w, r) {
			return
		}
		f := r.PostForm
		name := f.Get("name")
		req = updateRequest{Name: &name, Scopes: f["scopes"], ExpiresAt: f.Get("expires_at")}
		if req.Scopes == nil {
			req.Scopes = []string{} // every box unchecked: no scopes, which is refused
		}
		rows, req.Metadata, mdErr = formMetadata(f)
		var entered policyForm
		entered, req.policy, errs = formPolicy(f)
		if req.policy != nil || errs != nil { // the form has limit fields
			limits = entered
		}
	} else if !h.decode(w, r, &req) {
		return
	}
	p, err := updateParams(req, form)
	if form {
		// Every field the form got wrong at once, the limits' too.
		errs = withFieldError(withFieldError(errs, mdErr), err)
	}
	var after apikey.Record
	if err == nil && len(errs) == 0 {
		after, err = h.owner(r).Update(r.Context(), rec.ID, p)
		if form {
			errs = withFieldError(errs, err)
		}
	}
	if len(errs) > 0 {
		h.editPage(w, r, http.StatusBadRequest, rec, editValues{name: *req.Name, scopes: req.Scopes, rows: rows,
			expiresAt: req.ExpiresAt, limits: limits}, errs)
		return
	}
	if err != nil {
		h.failErr(w, r, "update", err)
		return
	}
	if form {
		seeOther(w, r, "keys/"+after.ID.String())
		return
	}
	writeJSON(w, http.StatusOK, h.keyJSON(after))
}

// updateParams turns an update request into lifecycle parameters.
func updateParams(req updateRequest, form bool) (keyward.UpdateParams, error) {
	var p keyward.UpdateParams
	if req.Name != nil {
		if strings.TrimSpace(*req.Name) == "" {
			// The lifecycle reads an empty name as "unchanged"; a name
			// sent empty is a mistake to refuse.
			return p, &keyward.InputError{Field: "name", Err: apikey.ValidName("")}
		}
		p.Name = *req.Name
	}
	if req.Scopes != nil {
		if len(req.Scopes) == 0 {
			// The lifecycle reads the empty set as "unchanged"; scopes
			// sent empty are a mistake to refuse.
			return p, &keyward.InputError{Field: "scopes", Err: errors.New("at least one scope is required")}
		}
		p.Scopes = scopes(req.Scopes)
	}
	p.Metadata = req.Metadata
	p.Policy = req.policy
	var err error
	if !form {
		if p.Policy, err = parsePolicyJSON(req.Policy); err != nil {
			return p, err
		}
	}
	p.ExpiresAt, err = parseExpiry(req.ExpiresAt, form)
	return p, err
}

// revoke serves POST /keys/{id}/revoke, with an optional reason: the
// confirmation's form, or a JSON body {"reason": "…"}, which may be left
// out.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	rec, ok := h.changeable(w, r, "revoke")
	if !ok {
		return
	}
	form := !wantsJSON(r)
	var req revokeRequest
	if form {
		if !h.parseForm(w, r) {
			return
		}
		if rec.Revoked() {
			// The page's answer to a second click is the same as to the
			// first: the list, showing the key revoked.
			seeOther(w, r, "keys?"+url.Values{"revoked": {rec.ID.String()}}.Encode())
			return
		}
		req.Reason = r.PostForm.Get("reason")
	} else if !h.decodeOptional(w, r, &req) {
		return
	}
	revoked, err := h.owner(r).Revoke(r.Context(), rec.ID, keyward.RevokeParams{Reason: req.Reason})
	if !form {
		if err != nil {
			h.failErr(w, r, "revoke", err)
			return
		}
		writeJSON(w, http.StatusOK, h.keyJSON(revoked))
		return
	}
	var in *keyward.InputError
	switch {
	case errors.As(err, &in):
		h.revokePage(w, r, http.StatusBadRequest, rec, req.Reason, map[string]string{in.Field: formMessage(in.Field, in.Err)})
		return
	case err != nil && !errors.Is(err, keyward.ErrAlreadyRevoked): // revoked meanwhile: as a second click
		h.failErr(w, r, "revoke", err)
		return
	}
	seeOther(w, r, "keys?"+url.Values{"revoked": {rec.ID.String()}}.Encode())
}

// revokeAll serves POST /keys/revoke-all, with an optional reason, as
// revoke takes it: every active key of the account is revoked at once.
// The API answers the revoked keys; the page redirects to the list, which
// says how many.
func (h *Handler) revokeAll(w http.ResponseWriter, r *http.Request) {
	role := operator(r).Role
	if !role.CanRevokeAll() {
		h.forbid(w, r, role.refusalAll())
		return
	}
	form := !wantsJSON(r)
	var req revokeRequest
	if form {
		if !h.parseForm(w, r) {
			return
		}
		req.Reason = r.PostForm.Get("reason")
	} else if !h.decodeOptional(w, r, &req) {
		return
	}
	recs, err := h.owner(r).RevokeAll(r.Context(), keyward.RevokeParams{Reason: req.Reason})
	if err != nil {
		var in *keyward.InputError
		if form && errors.As(err, &in) {
			h.revokeAllPage(w, r, http.StatusBadRequest, req.Reason, map[string]string{in.Field: formMessage(in.Field, in.Err)})
			return
		}
		h.failErr(w, r, "revoke all", err)
		return
	}
	if recs == nil {
		recs = []apikey.Record{}
	}
	if !form {
		writeJSON(w, http.StatusOK, listJSON{Keys: h.keysJSON(recs)})
		return
	}
	// The notice is found again from the store, by the revocation time:
	// a link cannot make the list say anything the store does not.
	when := "none"
	if len(recs) > 0 {
		when = strconv.FormatInt(recs[0].RevokedAt.UnixMicro(), 10)
	}
	seeOther(w, r, "keys?"+url.Values{"revoked_all": {when}}.Encode())
}

// trips serves GET /keys/{id}/trips: the uses of a canary key, newest
// first, to every role that may see the key. A key that is not a canary
// has none.
func (h *Handler) trips(w http.ResponseWriter, r *http.Request) {
	rec, ok := h.record(w, r, "list trips")
	if !ok {
		return
	}
	trips, err := h.owner(r).Trips(r.Context(), rec.ID, 0)
	if err != nil {
		h.failErr(w, r, "list trips", err)
		return
	}
	if trips == nil {
		trips = []apikey.Trip{}
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, tripsJSON{Trips: trips})
		return
	}
	h.tripsPage(w, r, rec, trips)
}

// rotate serves POST /keys/{id}/rotate with an overlap and an optional
// expiry of the new key: a JSON body {"overlap": "24h"} for the API, a
// form for the page.
func (h *Handler) rotate(w http.ResponseWriter, r *http.Request) {
	rec, ok := h.changeable(w, r, "rotate")
	if !ok {
		return
	}
	form := !wantsJSON(r)
	var req rotateRequest
	if form {
		if !h.parseForm(w, r) {
			return
		}
		req = rotateRequest{Overlap: r.PostForm.Get("overlap"), ExpiresAt: r.PostForm.Get("expires_at")}
	} else if !h.decode(w, r, &req) {
		return
	}
	var p keyward.RotateParams
	var err error
	switch {
	case req.Overlap == "":
		err = &keyward.InputError{Field: "overlap", Err: errors.New(`is required: a duration such as "24h"; "0s" ends the old key now`)}
	default:
		p.Overlap, err = time.ParseDuration(req.Overlap)
		if err != nil {
			err = &keyward.InputError{Field: "overlap", Err: errors.New(`must be a duration such as "24h"`)}
		}
	}
	if err == nil {
		p.ExpiresAt, err = parseExpiry(req.ExpiresAt, form)
	}
	if err == nil {
		var sec apikey.Secret
		var created apikey.Record
		sec, created, err = h.owner(r).Rotate(r.Context(), rec.ID, p)
		if err == nil {
			// Read the old key back for its new expiry. The rotation is done
			// either way: if this read fails, the raw key must still be
			// shown, and the page names the old key by ID only.
			old, gerr := h.owner(r).Get(r.Context(), rec.ID)
			if gerr != nil {
				old = apikey.Record{ID: rec.ID}
			}
			h.issued(w, r, sec, created, &old)
			return
		}
	}
	var in *keyward.InputError
	if form && errors.As(err, &in) {
		h.rotatePage(w, r, http.StatusBadRequest, rec, req, map[string]string{in.Field: formMessage(in.Field, in.Err)})
		return
	}
	h.failErr(w, r, "rotate", err)
}

// decodeOptional is decode for a body that may be left out: an empty
// body leaves dst as it is. A body that is there must be a JSON object
// of the request, as decode says.
func (h *Handler) decodeOptional(w http.ResponseWriter, r *http.Request, dst any) bool {
	body := bufio.NewReader(http.MaxBytesReader(w, r.Body, maxBody))
	if _, err := body.Peek(1); err == io.EOF {
		return true
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{body, r.Body}
	return h.decode(w, r, dst)
}

// decode reads a JSON object into dst, or answers the problem and returns
// false. Unknown fields, wrong types, trailing data and bodies over maxBody
// are refused; the problem names the field where there is one.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if ct := mediaType(r); ct != "application/json" {
		problem.Write(w, problem.Problem{Status: http.StatusUnsupportedMediaType,
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
		problem.Write(w, problem.Problem{Status: http.StatusRequestEntityTooLarge,
			Detail: "The request body is larger than " + strconv.Itoa(maxBody) + " bytes."})
	case errors.Is(err, io.EOF):
		problem.Write(w, problem.Problem{Status: http.StatusBadRequest, Detail: "The request body is empty; send a JSON object."})
	case errors.As(err, &typeErr) && typeErr.Field != "":
		field, _, _ := strings.Cut(typeErr.Field, ".")
		h.failField(w, r, field, errors.New("must be "+jsonKind(typeErr.Type)))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		h.failField(w, r, field, errors.New("is not a field of this request"))
	case errors.As(err, &typeErr):
		problem.Write(w, problem.Problem{Status: http.StatusBadRequest, Detail: "The request body must be a JSON object."})
	default:
		problem.Write(w, problem.Problem{Status: http.StatusBadRequest, Detail: "The request body is not valid JSON."})
	}
	return false
}

var errTrailing = errors.New("trailing data after the JSON object")

// jsonKind names a Go type as JSON does, for decoding errors.
func jsonKind(t reflect.Type) string {
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string" // such as a network, 203.0.113.0/24
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		elem := jsonKind(t.Elem())
		elem = strings.TrimPrefix(strings.TrimPrefix(elem, "an "), "a ")
		return "an array of " + elem + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

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

// A metaRow is one key-value row of a form's metadata.
type metaRow struct{ Key, Value string }

// formMetadata reads a form's metadata: the parallel fields metadata_key
// and metadata_value, one pair per row. Rows left empty are skipped; keys
// are trimmed. It returns the rows as entered, to show the form again, and
// the metadata, never nil (a form always sends the whole set).
func formMetadata(f url.Values) ([]metaRow, map[string]string, error) {
	keys, values := f["metadata_key"], f["metadata_value"]
	rows := make([]metaRow, 0, len(keys))
	md := make(map[string]string, len(keys))
	var err error
	if len(keys) != len(values) {
		err = &keyward.InputError{Field: "metadata", Err: errors.New("every metadata key needs a value field")}
	}
	for i, k := range keys {
		v := ""
		if i < len(values) {
			v = values[i]
		}
		rows = append(rows, metaRow{Key: k, Value: v})
		k = strings.TrimSpace(k)
		if k == "" && v == "" {
			continue
		}
		if _, dup := md[k]; dup && err == nil {
			err = &keyward.InputError{Field: "metadata", Err: errors.New("the key " + strconv.Quote(k) + " is given twice")}
		}
		md[k] = v
	}
	return rows, md, err
}
