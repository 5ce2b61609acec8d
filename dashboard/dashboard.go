package dashboard

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/limit"
)

// Handler is the dashboard: the JSON management API and the HTML page, on
// the same routes. Create it with [New] and mount it with
// [http.StripPrefix]:
//
//	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))
//
// Every request passes the cross-origin check, then the [AuthorizeFunc],
// before anything else happens. Handler is safe for concurrent use.
type Handler struct {
	keys         *keyward.Keys
	authorize    AuthorizeFunc
	unauthorized func(http.ResponseWriter, *http.Request, error)
	csrf         *http.CrossOriginProtection
	logger       *slog.Logger
	title        string
	limiter      limit.Limiter // nil: the pages show limits, not their usage

	mux    *http.ServeMux
	pages  map[string]*template.Template
	assets map[string]asset
}

// An Option configures [New].
type Option func(*config) error

type config struct {
	unauthorized func(http.ResponseWriter, *http.Request, error)
	csrf         *http.CrossOriginProtection
	logger       *slog.Logger
	title        string
	limiter      limit.Limiter
}

// WithUnauthorized sets what answers a request the [AuthorizeFunc] refused,
// with the error it returned (or [ErrNoOperator]). Use it to redirect to
// the application's sign-in page, or to add a WWW-Authenticate challenge.
// The default answers 401 Unauthorized, as problem+json or as a short HTML
// page, and never shows the error to the client; it sends no challenge,
// since it does not know the application's scheme (HTTP Basic needs one
// for the browser to ask for credentials).
func WithUnauthorized(h func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return func(c *config) error {
		if h == nil {
			return errors.New("dashboard: WithUnauthorized needs a function")
		}
		c.unauthorized = h
		return nil
	}
}

// WithCrossOriginProtection sets the cross-site request forgery check
// applied to every request, for deployments that must trust another
// origin (see [http.CrossOriginProtection.AddTrustedOrigin]). The default
// is [http.NewCrossOriginProtection]: state-changing requests that a
// browser marks as cross-origin are refused with 403 Forbidden. The check
// cannot be turned off.
func WithCrossOriginProtection(p *http.CrossOriginProtection) Option {
	return func(c *config) error {
		if p == nil {
			return errors.New("dashboard: WithCrossOriginProtection needs a CrossOriginProtection")
		}
		c.csrf = p
		return nil
	}
}

// WithLogger sets where the dashboard logs what it refuses (cross-origin
// requests, changes the operator's role does not allow) and what fails
// (the key store, the limiter, a page that cannot be rendered). The
// default is [slog.Default]. The changes themselves are logged by the
// lifecycle, with the operator as their actor (see [keyward.WithLogger]
// and [keyward.WithSubscriber]). Log lines carry key IDs, names, display
// prefixes and operators, never a raw key, a hash or metadata.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("dashboard: WithLogger needs a logger")
		}
		c.logger = l
		return nil
	}
}

// WithTitle sets the product name shown at the top left of the page and in
// its title. The default is "Dashboard".
func WithTitle(title string) Option {
	return func(c *config) error {
		title = strings.TrimSpace(title)
		if title == "" {
			return errors.New("dashboard: WithTitle needs a title")
		}
		c.title = title
		return nil
	}
}

// WithLimiter sets the limiter that enforces the keys' rate limits and
// quotas, the one the middleware counts requests with, so that the page
// of a key with a rate limit or a quota shows its usage now: how many
// requests the rate limit allows at once and when it is full again, how
// much of the quota is used and when it resets. The dashboard only reads
// ([limit.Limiter.Peek], at the lifecycle's time): it never counts a
// request. A limiter that fails, or takes more than two seconds, makes
// the page say the usage is unavailable; the page is still shown. Without
// it, the pages show the limits but not their usage.
func WithLimiter(l limit.Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("dashboard: WithLimiter needs a limiter")
		}
		c.limiter = l
		return nil
	}
}

// New returns the dashboard for keys. authorize is required: New refuses to
// build a dashboard without it, so that it cannot be mounted open by
// accident. The handler never authenticates operators itself.
func New(keys *keyward.Keys, authorize AuthorizeFunc, opts ...Option) (*Handler, error) {
	if keys == nil {
		return nil, errors.New("dashboard: New needs the keys (keyward.New)")
	}
	if authorize == nil {
		return nil, errors.New("dashboard: New needs an AuthorizeFunc: the dashboard is never served without an operator check")
	}
	c := config{
		csrf:   http.NewCrossOriginProtection(),
		logger: slog.Default(),
		title:  "Dashboard",
	}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("dashboard: parsing templates: %w", err)
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, fmt.Errorf("dashboard: loading assets: %w", err)
	}
	h := &Handler{
		keys:         keys,
		authorize:    authorize,
		unauthorized: c.unauthorized,
		csrf:         c.csrf,
		logger:       c.logger,
		title:        c.title,
		limiter:      c.limiter,
		pages:        pages,
		assets:       assets,
	}
	if h.unauthorized == nil {
		h.unauthorized = h.defaultUnauthorized
	}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.index)
	m.HandleFunc("GET /keys", h.list)
	m.HandleFunc("POST /keys", h.create)
	m.HandleFunc("GET /keys/new", h.newForm)
	m.HandleFunc("GET /keys/revoke-all", h.revokeAllForm)
	m.HandleFunc("POST /keys/revoke-all", h.revokeAll)
	m.HandleFunc("GET /keys/{id}/edit", h.editForm)
	m.HandleFunc("POST /keys/{id}/edit", h.update)
	m.HandleFunc("GET /keys/{id}/revoke", h.revokeForm)
	m.HandleFunc("POST /keys/{id}/revoke", h.revoke)
	m.HandleFunc("GET /keys/{id}/rotate", h.rotateForm)
	m.HandleFunc("POST /keys/{id}/rotate", h.rotate)
	m.HandleFunc("GET /keys/{id}/trips", h.trips)
	m.HandleFunc("GET /assets/{name}", h.asset)

	// "/keys/{id}" dispatches on the method itself: "PATCH /keys/{id}" and
	// "GET /keys/{id}" beside the method-less fallbacks of "/keys/new" and
	// "/keys/revoke-all" would be conflicting patterns for the mux.
	m.HandleFunc("/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.get(w, r)
		case http.MethodPatch:
			h.update(w, r)
		default:
			h.methodNotAllowed(w, r, "GET, HEAD, PATCH")
		}
	})
	// Other methods on known paths, and unknown paths, answer in the
	// client's format rather than the mux's plain text.
	for path, allow := range map[string]string{
		"/{$}":              "GET, HEAD",
		"/keys":             "GET, HEAD, POST",
		"/keys/new":         "GET, HEAD",
		"/keys/revoke-all":  "GET, HEAD, POST",
		"/keys/{id}/edit":   "GET, HEAD, POST",
		"/keys/{id}/revoke": "GET, HEAD, POST",
		"/keys/{id}/rotate": "GET, HEAD, POST",
		"/keys/{id}/trips":  "GET, HEAD",
		"/assets/{name}":    "GET, HEAD",
	} {
		m.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { h.methodNotAllowed(w, r, allow) })
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "There is nothing here.")
	})
	h.mux = m
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	h.fail(w, r, http.StatusMethodNotAllowed, "The method "+r.Method+" is not allowed here.")
}

// ServeHTTP serves the dashboard. It sets the security headers, refuses
// cross-origin state-changing requests, asks the [AuthorizeFunc] and
// checks the [Operator] it names, and only then routes the request. Every
// handler acts through the operator's account only
// ([keyward.Keys.Owner]) and checks the operator's [Role]; the context of
// every lifecycle call names the operator as the actor of the change
// ([audit.WithActor], with [audit.TypeOperator] and [Operator.Name]).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Content-Security-Policy", contentSecurityPolicy)

	if err := h.csrf.Check(r); err != nil {
		h.logger.LogAttrs(r.Context(), slog.LevelWarn, "dashboard: cross-origin request refused",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("origin", r.Header.Get("Origin")), slog.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")))
		h.fail(w, r, http.StatusForbidden, "Cross-origin requests may not change keys.")
		return
	}
	op, err := h.authorize(r)
	if err == nil {
		err = op.check()
	}
	if err != nil {
		h.unauthorized(w, r, err)
		return
	}

	// Routes are relative to the mount point: http.StripPrefix("/dashboard",
	// ...) leaves "/keys"; StripPrefix("/dashboard/", ...) leaves "keys".
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if clean := path.Clean(p); clean != p && clean+"/" != p {
		// The mux would redirect to the cleaned path, but it knows nothing
		// of the mount point and would redirect out of the dashboard.
		h.fail(w, r, http.StatusNotFound, "There is nothing here.")
		return
	}
	// Every change the lifecycle makes for this request names the
	// operator as its actor, in the audit trail and to subscribers.
	ctx := audit.WithActor(context.WithValue(r.Context(), operatorKey{}, op), op.actor())
	r2 := r.WithContext(ctx)
	if p != r.URL.Path {
		u := *r.URL
		u.Path, u.RawPath = p, ""
		r2.URL = &u
	}
	h.mux.ServeHTTP(w, r2)
}

const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"

type operatorKey struct{}

// operator returns the operator the AuthorizeFunc named for r: a valid
// one, since ServeHTTP refuses the others.
func operator(r *http.Request) Operator {
	op, _ := r.Context().Value(operatorKey{}).(Operator)
	return op
}

// owner returns the keys of the operator's account: the only way a
// handler reaches keys.
func (h *Handler) owner(r *http.Request) keyward.Owner {
	return h.keys.Owner(operator(r).Owner)
}

// root returns the relative reference from r's URL to the dashboard's
// mount point: "./" for "/keys", "../../" for "/keys/{id}/revoke". Links,
// redirects and the page's <base> use it, so the dashboard works under any
// prefix without being told it.
func root(r *http.Request) string {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if n := strings.Count(p, "/") - 1; n > 0 {
		return strings.Repeat("../", n)
	}
	return "./"
}

// seeOther redirects to ref, a reference relative to the mount point. The
// Location header is relative, which browsers resolve against the URL they
// requested; http.Redirect would make it absolute from the stripped path.
func seeOther(w http.ResponseWriter, r *http.Request, ref string) {
	w.Header().Set("Location", root(r)+ref)
	w.WriteHeader(http.StatusSeeOther)
}

// index sends the mount point to the key list.
func (h *Handler) index(w http.ResponseWriter, r *http.Request) { seeOther(w, r, "keys") }

// wantsJSON reports which face of the dashboard answers r. A form post is
// the HTML page's; other posts are the JSON API's. A read is the page's if
// the client accepts HTML, as browsers do; otherwise the API's.
func wantsJSON(r *http.Request) bool {
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodDelete {
		return !isForm(r)
	}
	return !strings.Contains(r.Header.Get("Accept"), "text/html")
}

// isForm reports whether r carries an HTML form.
func isForm(r *http.Request) bool {
	return mediaType(r) == "application/x-www-form-urlencoded"
}

// mediaType returns r's Content-Type without parameters, in lower case.
func mediaType(r *http.Request) string {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.ToLower(strings.TrimSpace(ct))
}
