package dashboard

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/clock"
	"github.com/keyward/keyward/problem"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// pageNames are the templates in templates/, each rendered inside
// layout.html, with the form fields of fields.html.
var pageNames = []string{"list", "key", "new", "reveal", "repeat", "edit", "revoke", "revokeall", "rotate", "trips", "error"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"clock": func(t time.Time) string { return t.UTC().Format("15:04") },
		"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"inc":   func(i int) int { return i + 1 },
		"num":   thousands,
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fields.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// An asset is an embedded static file.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

func loadAssets() (map[string]asset, error) {
	assets := map[string]asset{}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		assets[path.Base(p)] = asset{
			body:        body,
			contentType: mime.TypeByExtension(path.Ext(p)),
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	return assets, err
}

// asset serves GET /assets/{name}: the stylesheet, the script and the
// icon. Browsers revalidate them with their ETag.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("name")]
	if !ok {
		h.fail(w, r, http.StatusNotFound, "There is nothing here.")
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "private, no-cache")
	w.Header().Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// page holds what every page shows.
type page struct {
	Title    string   // the page's title, before the brand
	Brand    string   // WithTitle
	Root     string   // the <base href>: the mount point, relative
	Operator Operator // the signed-in operator; zero on the sign-in error page
	// CanCreate and CanRevokeAll say which buttons the operator's role
	// may use; the handlers check the role again.
	CanCreate    bool
	CanRevokeAll bool
}

func (h *Handler) page(r *http.Request, title string) page {
	op := operator(r)
	return page{Title: title, Brand: h.title, Root: root(r), Operator: op,
		CanCreate: op.Role.canCreate(), CanRevokeAll: op.Role.CanRevokeAll()}
}

// formTitle is the title of a form's page: "Error: " and the title when
// the form is shown again with errors, so that the first thing a screen
// reader announces, and the tab shows, is that the form was refused.
func formTitle(title string, errs map[string]string) string {
	if len(errs) > 0 {
		return "Error: " + title
	}
	return title
}

// keyView is a key as the page shows it.
type keyView struct {
	ID         string
	Name       string
	Prefix     string
	Mode       string // "live" or "test"
	Scopes     []string
	Metadata   []metaRow
	Created    time.Time
	LastUsed   time.Time // zero: never used
	Revoked    time.Time
	Expires    time.Time
	Status     string // "active", "revoked" or "expired"
	Replaces   string // the ID of the key this one replaced, if any
	ReplacedBy string // the ID of the key that replaces this one, if any
	// RevokedReason is why the key was revoked, if a reason was given.
	RevokedReason string
	// Exposure is where the key was found exposed; nil if it was not.
	Exposure *exposureView
	// Canary reports that the key is a tripwire, which never authorizes.
	Canary bool
	// Policy is the key's limits; nil if it has none.
	Policy *policyView
	// CanChange reports that the operator may edit and revoke the key:
	// the role allows its mode, and it is not revoked.
	CanChange bool
	// CanRoll reports that the operator may also roll it: it is active,
	// and not a canary (the lifecycle refuses to rotate a tripwire).
	CanRoll bool
	// Recent is the key's requests of the last 24 hours, on the list.
	Recent recentView
}

// An exposureView is where a key was found exposed, as the page shows it.
// Its source and URL come from whoever reported the key, a scanner
// perhaps, and may be hostile: the page shows them as text only, and
// makes the URL a link only if it is an http or https URL.
type exposureView struct {
	At     time.Time // when the exposure was reported
	Source string    // who found the key, such as "github"
	Href   string    // the URL to link to, if it is http(s); else empty
	Text   string    // the URL as shown, shortened; empty if there is none
}

// maxURLText is the length, in bytes, beyond which a page shortens the
// text of an exposure's URL; the link still goes to the whole URL.
const maxURLText = 80

func newExposureView(e *apikey.Exposure) *exposureView {
	if e == nil {
		return nil
	}
	return &exposureView{At: e.At, Source: e.Source, Href: safeHref(e.URL), Text: shorten(e.URL, maxURLText)}
}

// safeHref returns raw as a link target if it is an absolute http or
// https URL with a host, and "" otherwise: a javascript:, data: or
// relative URL never becomes a link.
func safeHref(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// shorten cuts s to at most n bytes, on a character boundary, and marks
// the cut with an ellipsis.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (h *Handler) view(r *http.Request, rec apikey.Record) keyView {
	v := keyView{
		ID:       rec.ID.String(),
		Name:     rec.Name,
		Prefix:   rec.Prefix,
		Mode:     rec.Mode.String(),
		Scopes:   rec.Scopes.Strings(),
		Metadata: metaRows(rec.Metadata),
		Created:  rec.CreatedAt,
		LastUsed: rec.LastUsedAt,
		Revoked:  rec.RevokedAt,
		Expires:  rec.ExpiresAt,

		RevokedReason: rec.RevokedReason,
		Exposure:      newExposureView(rec.Exposure),
		Canary:        rec.Canary,
		Policy:        newPolicyView(rec.Policy),
	}
	status := rec.Status(h.keys.Now())
	v.Status = status.String()
	if rec.Replaces != uuid.Nil {
		v.Replaces = rec.Replaces.String()
	}
	if rec.ReplacedBy != uuid.Nil {
		v.ReplacedBy = rec.ReplacedBy.String()
	}
	v.CanChange = operator(r).Role.CanChange(rec.Mode) && status != apikey.Revoked
	v.CanRoll = v.CanChange && status == apikey.Active && !rec.Canary
	return v
}

func metaRows(md apikey.Metadata) []metaRow {
	rows := make([]metaRow, 0, md.Len())
	for k, v := range md.All() {
		rows = append(rows, metaRow{Key: k, Value: v})
	}
	return rows
}

// emptyRows is the number of empty metadata rows a form offers, to add
// pairs without JavaScript.
const emptyRows = 3

// formRows returns the rows a form shows: the pairs entered or stored,
// then empty rows to add more, up to the limit of pairs.
func formRows(rows []metaRow) []metaRow {
	out := make([]metaRow, 0, len(rows)+emptyRows)
	for _, row := range rows {
		if row.Key != "" || row.Value != "" {
			out = append(out, row)
		}
	}
	for i := 0; i < emptyRows && len(out) < apikey.MaxMetadataPairs; i++ {
		out = append(out, metaRow{})
	}
	return out
}

// render executes a page into a buffer, so that a template failure is a
// clean 500 rather than half a page, then writes it.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		h.logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: rendering a page",
			slog.String("page", name), slog.Any("err", err))
		problem.Write(w, problem.Problem{Status: http.StatusInternalServerError, Detail: "The page could not be shown; try again."})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// notAcceptable answers a JSON client that asked for one of the page's own
// forms, which exist only as HTML. It returns true if it answered.
func (h *Handler) notAcceptable(w http.ResponseWriter, r *http.Request) bool {
	if !wantsJSON(r) {
		return false
	}
	problem.Write(w, problem.Problem{Status: http.StatusNotAcceptable,
		Detail: "This is a page of the HTML dashboard; the JSON API has no resource here."})
	return true
}

type errorPage struct {
	page
	Status     int
	StatusText string
	Message    string
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, "error", errorPage{
		page:       h.page(r, http.StatusText(status)),
		Status:     status,
		StatusText: http.StatusText(status),
		Message:    msg,
	})
}

type notice struct {
	Kind string // "success" or "info"
	Text string
}

type option struct {
	Value, Label string
	Selected     bool
}

type listPage struct {
	page
	Keys     []keyView
	Notice   *notice
	Modes    []option
	Statuses []option
	Filtered bool
	Older    string // the next page's URL, relative to the mount point
	Newest   string // the first page's URL, when not on it
}

func (h *Handler) listPage(w http.ResponseWriter, r *http.Request, q url.Values, pg keyward.Page) {
	data := listPage{page: h.page(r, "API keys")}
	for _, rec := range pg.Keys {
		data.Keys = append(data.Keys, h.view(r, rec))
	}
	h.recent(r, data.Keys, pg.Keys)
	mode, status := q.Get("mode"), q.Get("status")
	data.Filtered = mode != "" || status != ""
	data.Modes = options(mode, "", "All modes", "live", "Live", "test", "Test")
	data.Statuses = options(status, "", "All statuses", "active", "Active", "revoked", "Revoked", "expired", "Expired")
	filters := url.Values{}
	if mode != "" {
		filters.Set("mode", mode)
	}
	if status != "" {
		filters.Set("status", status)
	}
	if pg.Next != "" {
		next := url.Values{"cursor": {pg.Next}}
		for k, v := range filters {
			next[k] = v
		}
		data.Older = "keys?" + next.Encode()
	}
	if q.Get("cursor") != "" {
		data.Newest = "keys"
		if len(filters) > 0 {
			data.Newest += "?" + filters.Encode()
		}
	}
	data.Notice = h.listNotice(r, q)
	h.render(w, r, http.StatusOK, "list", data)
}

// listNotice is the notice the list shows after a revocation. It is
// found from the store, never taken from the URL, so that a link cannot
// make the page say anything the store does not.
func (h *Handler) listNotice(r *http.Request, q url.Values) *notice {
	ctx, o := r.Context(), h.owner(r)
	if id, err := keyward.ParseID(q.Get("revoked")); err == nil {
		if rec, err := o.Get(ctx, id); err == nil && rec.Revoked() {
			return &notice{Kind: "success", Text: "Revoked “" + rec.Name + "” (" + rec.Prefix +
				"). Requests using it now get 401 Unauthorized."}
		}
	}
	switch all := q.Get("revoked_all"); all {
	case "":
	case "none":
		// Revoke-all found no active key: say so if it is still true.
		active, err := o.List(ctx, keyward.ListOptions{Status: apikey.Active, Limit: 1})
		if err == nil && len(active.Keys) == 0 {
			return &notice{Kind: "info", Text: "No key is active: there was nothing to revoke."}
		}
	default:
		// The time of the revocation: the keys revoked then.
		micros, err := strconv.ParseInt(all, 10, 64)
		if err != nil {
			return nil
		}
		at := time.UnixMicro(micros)
		n, complete, err := h.countKeys(r, keyward.ListOptions{Status: apikey.Revoked},
			func(rec apikey.Record) bool { return rec.RevokedAt.Equal(at) })
		if err == nil && n > 0 {
			more := ""
			if !complete {
				more = " or more"
			}
			return &notice{Kind: "success", Text: "Revoked all active keys: " + plural(n, "key") + more +
				". Requests using them now get 401 Unauthorized."}
		}
	}
	return nil
}

// countKeys reads at most maxScan pages of scanLimit keys, the longest
// page the lifecycle returns.
const (
	maxScan   = 10
	scanLimit = 1000
)

// countKeys counts the account's keys that opts lists and match accepts,
// reading at most maxScan pages; complete is false if it stopped before
// the end.
func (h *Handler) countKeys(r *http.Request, opts keyward.ListOptions, match func(apikey.Record) bool) (n int, complete bool, err error) {
	opts.Limit = scanLimit
	for range maxScan {
		pg, err := h.owner(r).List(r.Context(), opts)
		if err != nil {
			return 0, false, err
		}
		for _, rec := range pg.Keys {
			if match(rec) {
				n++
			}
		}
		if pg.Next == "" {
			return n, true, nil
		}
		opts.Cursor = pg.Next
	}
	return n, false, nil
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	s := strconv.Itoa(n) + " " + noun
	if n != 1 {
		s += "s"
	}
	return s
}

func options(current string, pairs ...string) []option {
	var out []option
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, option{Value: pairs[i], Label: pairs[i+1], Selected: pairs[i] == current})
	}
	return out
}

// A keyLink is a link to a key related to the one shown.
type keyLink struct {
	ID     string
	Name   string // empty if the key could not be read
	Prefix string
}

type keyPage struct {
	page
	Key        keyView
	Replaces   *keyLink
	ReplacedBy *keyLink
	// Usage is how much of its limits the key has used; nil without a
	// limiter, or for a key without a rate limit or quota.
	Usage *usageView
	// Requests are the key's requests of the last 30 days, per day; nil
	// for a canary, whose uses are its trips.
	Requests *chartView
	// History is a page of the key's audit trail, newest first.
	History *historyView
}

// keyPage renders the page of one key: its fields, links to the keys it
// replaced and that replace it, the usage of its limits, its requests of
// the last 30 days and a page of its history.
func (h *Handler) keyPage(w http.ResponseWriter, r *http.Request, rec apikey.Record) {
	history, err := h.history(r, rec)
	if err != nil {
		h.failErr(w, r, "get", err)
		return
	}
	data := keyPage{page: h.page(r, rec.Name), Key: h.view(r, rec), Usage: h.usage(r, rec), History: history}
	if !rec.Canary {
		data.Requests = h.requests(r, rec)
	}
	data.Replaces = h.link(r, rec.Replaces)
	data.ReplacedBy = h.link(r, rec.ReplacedBy)
	h.render(w, r, http.StatusOK, "key", data)
}

// link returns the link to the account's key id, or nil for none. The
// rotation links of a record never leave its owner; should a read fail,
// the link shows the ID alone.
func (h *Handler) link(r *http.Request, id uuid.UUID) *keyLink {
	if id == uuid.Nil {
		return nil
	}
	l := &keyLink{ID: id.String()}
	if rec, err := h.owner(r).Get(r.Context(), id); err == nil {
		l.Name, l.Prefix = rec.Name, rec.Prefix
	}
	return l
}

type revokePage struct {
	page
	Key    keyView
	Reason string            // the reason entered
	Errors map[string]string // by field
}

// revokeForm serves GET /keys/{id}/revoke, the confirmation, with an
// optional reason.
func (h *Handler) revokeForm(w http.ResponseWriter, r *http.Request) {
	if h.notAcceptable(w, r) {
		return
	}
	if rec, ok := h.changeable(w, r, "get"); ok {
		h.revokePage(w, r, http.StatusOK, rec, "", nil)
	}
}

// revokePage renders the confirmation with the reason entered and the
// errors by field, so that a refused reason is shown again as typed.
func (h *Handler) revokePage(w http.ResponseWriter, r *http.Request, status int, rec apikey.Record, reason string, errs map[string]string) {
	h.render(w, r, status, "revoke", revokePage{page: h.page(r, formTitle("Revoke key", errs)), Key: h.view(r, rec),
		Reason: reason, Errors: errs})
}

type revokeAllPage struct {
	page
	Active   int               // the account's active keys
	Complete bool              // false if there are more than Active
	Reason   string            // the reason entered
	Errors   map[string]string // by field
}

// revokeAllForm serves GET /keys/revoke-all, the confirmation of revoking
// every active key of the account.
func (h *Handler) revokeAllForm(w http.ResponseWriter, r *http.Request) {
	if h.notAcceptable(w, r) {
		return
	}
	role := operator(r).Role
	if !role.CanRevokeAll() {
		h.forbid(w, r, role.refusalAll())
		return
	}
	h.revokeAllPage(w, r, http.StatusOK, "", nil)
}

// revokeAllPage renders the confirmation of revoking all keys, with the
// number of active keys, the reason entered and the errors by field.
func (h *Handler) revokeAllPage(w http.ResponseWriter, r *http.Request, status int, reason string, errs map[string]string) {
	n, complete, err := h.countKeys(r, keyward.ListOptions{Status: apikey.Active}, func(apikey.Record) bool { return true })
	if err != nil {
		h.failErr(w, r, "list", err)
		return
	}
	h.render(w, r, status, "revokeall", revokeAllPage{page: h.page(r, formTitle("Revoke all keys", errs)),
		Active: n, Complete: complete, Reason: reason, Errors: errs})
}

type rotatePage struct {
	page
	Key       keyView
	Overlaps  []option
	ExpiresAt string
	MinDate   string
	Errors    map[string]string // by field
}

// rotateForm serves GET /keys/{id}/rotate, the choice of overlap.
func (h *Handler) rotateForm(w http.ResponseWriter, r *http.Request) {
	if h.notAcceptable(w, r) {
		return
	}
	if rec, ok := h.changeable(w, r, "get"); ok {
		h.rotatePage(w, r, http.StatusOK, rec, rotateRequest{}, nil)
	}
}

func (h *Handler) rotatePage(w http.ResponseWriter, r *http.Request, status int, rec apikey.Record, req rotateRequest, errs map[string]string) {
	h.render(w, r, status, "rotate", rotatePage{
		page:      h.page(r, formTitle("Roll key", errs)),
		Key:       h.view(r, rec),
		Overlaps:  overlapOptions(h.keys.MaxOverlap(), req.Overlap),
		ExpiresAt: req.ExpiresAt,
		MinDate:   h.minDate(),
		Errors:    errs,
	})
}

// The overlaps the page offers when rolling a key, those up to the
// lifecycle's maximum; the maximum itself is offered too.
var overlapChoices = []struct {
	d     time.Duration
	label string
}{
	{0, "Now: the current key stops working at once"},
	{time.Hour, "In 1 hour"},
	{24 * time.Hour, "In 24 hours"},
	{7 * 24 * time.Hour, "In 7 days"},
}

// defaultOverlap is the overlap chosen unless the maximum is shorter.
const defaultOverlap = 24 * time.Hour

func overlapOptions(max time.Duration, current string) []option {
	var out []option
	listed := false
	for _, c := range overlapChoices {
		if c.d <= max {
			out = append(out, option{Value: clock.ShortDuration(c.d), Label: c.label})
			listed = listed || c.d == max
		}
	}
	if !listed {
		out = append(out, option{Value: clock.ShortDuration(max), Label: "In " + humanDuration(max) + ", the longest allowed"})
	}
	if current == "" || !slices.ContainsFunc(out, func(o option) bool { return o.Value == current }) {
		current = out[len(out)-1].Value
		if defaultOverlap <= max {
			current = clock.ShortDuration(defaultOverlap)
		}
	}
	for i := range out {
		out[i].Selected = out[i].Value == current
	}
	return out
}

// humanDuration writes d in words where it is whole days, hours or
// minutes.
func humanDuration(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}} {
		if d >= u.d && d%u.d == 0 {
			return plural(int(d/u.d), u.name)
		}
	}
	return clock.ShortDuration(d)
}

// minDate is the earliest date a form's expiry field accepts: tomorrow,
// by the lifecycle's clock, in UTC.
func (h *Handler) minDate() string {
	return h.keys.Now().AddDate(0, 0, 1).Format(time.DateOnly)
}

type scopeChoice struct {
	Name, Description string
	Checked           bool
}

type modeChoice struct {
	Value, Label, Description string
	Checked                   bool
}

type newPage struct {
	page
	Name      string
	Modes     []modeChoice // those the role may create
	LiveNeeds string       // why live keys are not offered, if they are not
	Scopes    []scopeChoice
	Metadata  []metaRow
	ExpiresAt string
	MinDate   string
	Canary    bool // the canary box is checked
	Limits    limitsFields
	// Token is the form's one-time idempotency key: posting the form twice
	// creates one key.
	Token  string
	Errors map[string]string // by field
}

// newForm serves GET /keys/new, the form to create a key.
func (h *Handler) newForm(w http.ResponseWriter, r *http.Request) {
	if h.notAcceptable(w, r) {
		return
	}
	role := operator(r).Role
	if !role.canCreate() {
		h.forbid(w, r, role.refusal(apikey.Test))
		return
	}
	h.newPage(w, r, http.StatusOK, createRequest{Mode: "test"}, nil, nil)
}

// newPage renders the create form with the values given and the errors by
// field, so that a refused form loses nothing. The form keeps its token,
// unless the token itself was refused: then it gets a new one, and posting
// the form again creates a new key.
func (h *Handler) newPage(w http.ResponseWriter, r *http.Request, status int, req createRequest, rows []metaRow, errs map[string]string) {
	role := operator(r).Role
	data := newPage{
		page:      h.page(r, formTitle("New API key", errs)),
		Name:      req.Name,
		Metadata:  formRows(rows),
		ExpiresAt: req.ExpiresAt,
		MinDate:   h.minDate(),
		Canary:    req.Canary,
		Limits:    newLimitsFields(req.limits, false),
		Token:     req.IdempotencyKey,
		Errors:    errs,
	}
	if _, refused := errs["idempotency_key"]; refused || data.Token == "" {
		data.Token = newToken()
	}
	for _, m := range []modeChoice{
		{Value: "live", Label: "Live", Description: "Production: real payments, real funds."},
		{Value: "test", Label: "Test", Description: "Development and staging."},
	} {
		mode, _ := apikey.ParseMode(m.Value)
		if !role.CanChange(mode) {
			data.LiveNeeds = "Live keys need the admin role."
			continue
		}
		m.Checked = req.Mode == m.Value
		data.Modes = append(data.Modes, m)
	}
	for _, s := range h.keys.Catalog().Scopes() {
		data.Scopes = append(data.Scopes, scopeChoice{
			Name:        string(s),
			Description: scopeDescriptions[s],
			Checked:     slices.Contains(req.Scopes, string(s)),
		})
	}
	h.render(w, r, status, "new", data)
}

// newToken returns a new one-time token for the create form: 128 random
// bits, a valid idempotency key.
func newToken() string { return "form_" + rand.Text() }

// scopeDescriptions are the product documentation's words for the default
// catalog's scopes.
var scopeDescriptions = map[scope.Scope]string{
	scope.LinksRead:      "List and retrieve payment links",
	scope.LinksWrite:     "Create, update, and delete payment links",
	scope.SessionsRead:   "List and retrieve checkout sessions",
	scope.SessionsWrite:  "Create checkout sessions",
	scope.WebhooksRead:   "List and retrieve webhook endpoints",
	scope.WebhooksWrite:  "Create and delete webhook endpoints",
	scope.EventsRead:     "List and retrieve events",
	scope.CustomersRead:  "List and retrieve customers",
	scope.CustomersWrite: "Create and update customers",
}

// editValues are the values an edit form shows: the key's, or those
// entered.
type editValues struct {
	name      string
	scopes    []string
	rows      []metaRow
	expiresAt string
	limits    policyForm
}

type editPage struct {
	page
	Key       keyView
	Name      string
	Scopes    []scopeChoice // the key's scopes only: they can only narrow
	Metadata  []metaRow
	ExpiresAt string
	MinDate   string
	Limits    limitsFields
	Errors    map[string]string // by field
}

// editForm serves GET /keys/{id}/edit, the form to change a key's name,
// scopes, metadata, expiry and limits.
func (h *Handler) editForm(w http.ResponseWriter, r *http.Request) {
	if h.notAcceptable(w, r) {
		return
	}
	if rec, ok := h.changeable(w, r, "get"); ok {
		h.editPage(w, r, http.StatusOK, rec, editValues{name: rec.Name, scopes: rec.Scopes.Strings(), rows: metaRows(rec.Metadata),
			limits: newPolicyForm(rec.Policy)}, nil)
	}
}

func (h *Handler) editPage(w http.ResponseWriter, r *http.Request, status int, rec apikey.Record, v editValues, errs map[string]string) {
	data := editPage{
		page:      h.page(r, formTitle("Edit key", errs)),
		Key:       h.view(r, rec),
		Name:      v.name,
		Metadata:  formRows(v.rows),
		ExpiresAt: v.expiresAt,
		MinDate:   h.minDate(),
		Limits:    newLimitsFields(v.limits, true),
		Errors:    errs,
	}
	for _, s := range rec.Scopes.Scopes() {
		data.Scopes = append(data.Scopes, scopeChoice{
			Name:        string(s),
			Description: scopeDescriptions[s],
			Checked:     slices.Contains(v.scopes, string(s)),
		})
	}
	h.render(w, r, status, "edit", data)
}

type revealPage struct {
	page
	RawKey   string
	Key      keyView
	Replaced *keyView
	// ReplacedEnded reports that the replaced key stopped working at once.
	ReplacedEnded bool
}

// revealPage shows a new raw key, this once.
func (h *Handler) revealPage(w http.ResponseWriter, r *http.Request, sec apikey.Secret, rec apikey.Record, replaced *apikey.Record) {
	title := "API key created"
	data := revealPage{RawKey: sec.Reveal(), Key: h.view(r, rec)}
	if replaced != nil {
		title = "Key rolled"
		old := h.view(r, *replaced)
		data.Replaced = &old
		data.ReplacedEnded = replaced.Expired(h.keys.Now())
	}
	data.page = h.page(r, title)
	h.render(w, r, http.StatusCreated, "reveal", data)
}

// tripsPage is the uses of a canary key.
type tripsPage struct {
	page
	Key   keyView
	Trips []apikey.Trip // newest first
	// Kept is the number of trips the store keeps at least, the newest:
	// older ones may be gone.
	Kept int
}

// tripsPage renders the trips of a key, newest first.
func (h *Handler) tripsPage(w http.ResponseWriter, r *http.Request, rec apikey.Record, trips []apikey.Trip) {
	h.render(w, r, http.StatusOK, "trips", tripsPage{page: h.page(r, "Trips of "+rec.Name), Key: h.view(r, rec),
		Trips: trips, Kept: store.MaxTrips})
}

// repeatPage answers a create form posted again, as the reload of the
// page that showed the key does: the key exists, and its raw key is not
// shown again.
func (h *Handler) repeatPage(w http.ResponseWriter, r *http.Request, rec apikey.Record) {
	h.render(w, r, http.StatusOK, "repeat", keyPage{page: h.page(r, "API key already created"), Key: h.view(r, rec)})
}
