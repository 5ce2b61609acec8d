package dashboard

import (
	"bytes"
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
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// pageNames are the templates in templates/, each rendered inside
// layout.html.
var pageNames = []string{"list", "key", "new", "reveal", "revoke", "rotate", "error"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"clock": func(t time.Time) string { return t.UTC().Format("15:04") },
		"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
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

// asset serves GET /assets/{name}: the stylesheet and the script. Browsers
// revalidate them with their ETag.
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
	Title    string // the page's title, before the brand
	Brand    string // WithTitle
	Root     string // the <base href>: the mount point, relative
	Operator string // the signed-in operator, if any
}

func (h *Handler) page(r *http.Request, title string) page {
	return page{Title: title, Brand: h.title, Root: root(r), Operator: operator(r)}
}

// keyView is a key as the page shows it.
type keyView struct {
	ID       string
	Name     string
	Prefix   string
	Mode     string // "live" or "test"
	Scopes   []string
	Created  time.Time
	LastUsed time.Time // zero: never used
	Revoked  time.Time
	Expires  time.Time
	Status   string // "active", "revoked" or "expired"
}

func (h *Handler) view(rec apikey.Record) keyView {
	return keyView{
		ID:       rec.ID.String(),
		Name:     rec.Name,
		Prefix:   rec.Prefix,
		Mode:     rec.Mode.String(),
		Scopes:   rec.Scopes.Strings(),
		Created:  rec.CreatedAt,
		LastUsed: rec.LastUsedAt,
		Revoked:  rec.RevokedAt,
		Expires:  rec.ExpiresAt,
		Status:   rec.Status(h.now()).String(),
	}
}

// render executes a page into a buffer, so that a template failure is a
// clean 500 rather than half a page, then writes it.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		h.logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: rendering a page",
			slog.String("page", name), slog.Any("err", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
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
	writeProblem(w, problem{Status: http.StatusNotAcceptable, Detail: "This is a page of the HTML dashboard; the JSON API has no resource here."})
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

func (h *Handler) listPage(w http.ResponseWriter, r *http.Request, q url.Values, pg store.Page) {
	data := listPage{page: h.page(r, "API keys")}
	for _, rec := range pg.Records {
		data.Keys = append(data.Keys, h.view(rec))
	}
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
	if id, err := uuid.Parse(q.Get("revoked")); err == nil {
		// The revocation notice names the key from the store, never from
		// the URL, so a link cannot make the page say anything else.
		if rec, err := h.keys.Get(r.Context(), id); err == nil && rec.Revoked() {
			data.Notice = &notice{Kind: "success", Text: "Revoked “" + rec.Name + "” (" + rec.Prefix +
				"). Requests using it now get 401 Unauthorized."}
		}
	}
	h.render(w, r, http.StatusOK, "list", data)
}

func options(current string, pairs ...string) []option {
	var out []option
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, option{Value: pairs[i], Label: pairs[i+1], Selected: pairs[i] == current})
	}
	return out
}

type keyPage struct {
	page
	Key      keyView
	Overlaps []option // rotate
	Error    string   // rotate
}

// keyPage renders one of the pages about one key: "key", "revoke" or
// "rotate".
func (h *Handler) keyPage(w http.ResponseWriter, r *http.Request, name string, rec apikey.Record) {
	title := map[string]string{"key": rec.Name, "revoke": "Revoke key", "rotate": "Roll key"}[name]
	data := keyPage{page: h.page(r, title), Key: h.view(rec)}
	if name == "rotate" {
		data.Overlaps = overlapOptions(defaultOverlap)
	}
	h.render(w, r, http.StatusOK, name, data)
}

func (h *Handler) rotatePage(w http.ResponseWriter, r *http.Request, status int, rec apikey.Record, overlap, msg string) {
	h.render(w, r, status, "rotate", keyPage{
		page:     h.page(r, "Roll key"),
		Key:      h.view(rec),
		Overlaps: overlapOptions(overlap),
		Error:    msg,
	})
}

// The overlaps the page offers when rolling a key.
const defaultOverlap = "24h"

func overlapOptions(current string) []option {
	return options(current,
		"0s", "Now: the current key stops working at once",
		"1h", "In 1 hour",
		"24h", "In 24 hours",
		"168h", "In 7 days",
	)
}

// newForm serves GET /keys/new, the form to create a key.
func (h *Handler) newForm(w http.ResponseWriter, r *http.Request) {
	if h.notAcceptable(w, r) {
		return
	}
	h.newPage(w, r, http.StatusOK, createRequest{Mode: "test"}, nil)
}

// revokeForm serves GET /keys/{id}/revoke, the confirmation.
func (h *Handler) revokeForm(w http.ResponseWriter, r *http.Request) {
	if h.notAcceptable(w, r) {
		return
	}
	if rec, ok := h.record(w, r, "get"); ok {
		h.keyPage(w, r, "revoke", rec)
	}
}

// rotateForm serves GET /keys/{id}/rotate, the choice of overlap.
func (h *Handler) rotateForm(w http.ResponseWriter, r *http.Request) {
	if h.notAcceptable(w, r) {
		return
	}
	if rec, ok := h.record(w, r, "get"); ok {
		h.keyPage(w, r, "rotate", rec)
	}
}

type scopeChoice struct {
	Name, Description string
	Checked           bool
}

type newPage struct {
	page
	Name   string
	Mode   string
	Scopes []scopeChoice
	Errors map[string]string // by field
}

// newPage renders the create form with the values given and the errors by
// field, so that a refused form loses nothing.
func (h *Handler) newPage(w http.ResponseWriter, r *http.Request, status int, req createRequest, errs map[string]string) {
	data := newPage{page: h.page(r, "New API key"), Name: req.Name, Mode: req.Mode, Errors: errs}
	for _, s := range h.keys.Catalog().Scopes() {
		data.Scopes = append(data.Scopes, scopeChoice{
			Name:        string(s),
			Description: scopeDescriptions[s],
			Checked:     slices.Contains(req.Scopes, string(s)),
		})
	}
	h.render(w, r, status, "new", data)
}

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
	data := revealPage{RawKey: sec.Reveal(), Key: h.view(rec)}
	if replaced != nil {
		title = "Key rolled"
		old := h.view(*replaced)
		data.Replaced = &old
		data.ReplacedEnded = !replaced.ExpiresAt.IsZero() && !replaced.ExpiresAt.After(h.now())
	}
	data.page = h.page(r, title)
	h.render(w, r, http.StatusCreated, "reveal", data)
}
