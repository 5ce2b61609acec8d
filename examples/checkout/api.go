package main

import (
	"crypto/rand"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/problem"
	"github.com/keyward/keyward/scope"
)

// The API's resources. Each belongs to the merchant (the owner) and the
// mode of the key that created it: a key sees its own merchant's data only,
// and of its own mode only.

// Amount is a sum of money, as the SDK sends it: a decimal string and an
// ISO 4217 currency code.
type Amount struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// Link is a payment link.
type Link struct {
	ID        string      `json:"id"`
	Object    string      `json:"object"`
	Mode      apikey.Mode `json:"mode"`
	Name      string      `json:"name"`
	Amount    Amount      `json:"amount"`
	CreatedAt time.Time   `json:"createdAt"`
}

// Session is a checkout session.
type Session struct {
	ID         string            `json:"id"`
	Object     string            `json:"object"`
	Mode       apikey.Mode       `json:"mode"`
	Status     string            `json:"status"`
	Amount     Amount            `json:"amount"`
	SuccessURL string            `json:"successUrl"`
	Metadata   map[string]string `json:"metadata"`
	CreatedAt  time.Time         `json:"createdAt"`
}

// Webhook is a webhook endpoint.
type Webhook struct {
	ID        string      `json:"id"`
	Object    string      `json:"object"`
	Mode      apikey.Mode `json:"mode"`
	URL       string      `json:"url"`
	Events    []string    `json:"events"`
	CreatedAt time.Time   `json:"createdAt"`
}

// Event records a change to another resource.
type Event struct {
	ID        string      `json:"id"`
	Object    string      `json:"object"`
	Mode      apikey.Mode `json:"mode"`
	Type      string      `json:"type"`
	Data      any         `json:"data"`
	CreatedAt time.Time   `json:"createdAt"`
}

// Customer is a customer.
type Customer struct {
	ID        string      `json:"id"`
	Object    string      `json:"object"`
	Mode      apikey.Mode `json:"mode"`
	Email     string      `json:"email"`
	Name      string      `json:"name,omitempty"`
	CreatedAt time.Time   `json:"createdAt"`
}

// eventTypes are the events webhook endpoints may subscribe to; "*" means
// all of them.
var eventTypes = []string{
	"checkout.session.created",
	"customer.created",
	"payment_link.created",
	"payment_link.deleted",
	"webhook_endpoint.created",
	"webhook_endpoint.deleted",
}

// A tenant is whose data a request sees: the owner (the merchant) and the
// mode of the key that called. Every object belongs to one tenant, and no
// request reads or changes another tenant's objects.
type tenant struct {
	owner string
	mode  apikey.Mode
}

// table holds one resource of every tenant, oldest first.
type table[T any] struct {
	mu   sync.RWMutex
	rows []row[T]
}

type row[T any] struct {
	tenant tenant
	id     string
	v      T
}

func (t *table[T]) add(tn tenant, id string, v T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, row[T]{tn, id, v})
}

// list returns the tenant's rows, newest first.
func (t *table[T]) list(tn tenant) []T {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := []T{}
	for i := len(t.rows) - 1; i >= 0; i-- {
		if t.rows[i].tenant == tn {
			out = append(out, t.rows[i].v)
		}
	}
	return out
}

// get returns the tenant's row with the given ID. Another tenant's row is
// not found, exactly as an unknown ID.
func (t *table[T]) get(tn tenant, id string) (T, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, r := range t.rows {
		if r.tenant == tn && r.id == id {
			return r.v, true
		}
	}
	var zero T
	return zero, false
}

// remove deletes the tenant's row with the given ID and returns it. Another
// tenant's row is not found, exactly as an unknown ID.
func (t *table[T]) remove(tn tenant, id string) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.rows {
		if r.tenant == tn && r.id == id {
			t.rows = slices.Delete(t.rows, i, i+1)
			return r.v, true
		}
	}
	var zero T
	return zero, false
}

// data is the API's in-memory database, shared by every merchant.
type data struct {
	now       func() time.Time // the key lifecycle's clock (keyward.Keys.Now)
	links     table[Link]
	sessions  table[Session]
	webhooks  table[Webhook]
	events    table[Event]
	customers table[Customer]
}

// newData returns the database with each merchant's test-mode records
// (merchant.customers and merchant.links), so that the first GET shows
// something. Timestamps come from now.
func newData(now func() time.Time, ms []merchant) *data {
	d := &data{now: now}
	at := d.timestamp()
	for _, m := range ms {
		tn := tenant{owner: m.id, mode: apikey.Test}
		for _, c := range m.customers {
			c.ID, c.Object, c.Mode, c.CreatedAt = newID("cus", tn.mode), "customer", tn.mode, at
			d.customers.add(tn, c.ID, c)
			d.emit(tn, "customer.created", c, at)
		}
		for _, l := range m.links {
			l.ID, l.Object, l.Mode, l.CreatedAt = newID("plink", tn.mode), "payment_link", tn.mode, at
			d.links.add(tn, l.ID, l)
			d.emit(tn, "payment_link.created", l, at)
		}
	}
	return d
}

// newID returns a random ID such as "cs_test_NBXZ...".
func newID(prefix string, mode apikey.Mode) string {
	return prefix + "_" + mode.String() + "_" + rand.Text()
}

func (d *data) timestamp() time.Time { return d.now().UTC().Truncate(time.Second) }

func (d *data) emit(tn tenant, typ string, obj any, at time.Time) {
	e := Event{ID: newID("evt", tn.mode), Object: "event", Mode: tn.mode, Type: typ, Data: obj, CreatedAt: at}
	d.events.add(tn, e.ID, e)
}

// A scopedHandler serves a request for the tenant of the key that made it.
type scopedHandler func(w http.ResponseWriter, r *http.Request, tn tenant)

// routes returns the API, each route guarded by its scope and scoped to the
// caller's tenant. It goes behind middleware.Authenticate.
func (d *data) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, s scope.Scope, h scopedHandler) {
		mux.Handle(pattern, middleware.RequireScopes(s)(scoped(h)))
	}
	handle("GET /api/v1/links", scope.LinksRead, listOf(&d.links))
	handle("GET /api/v1/links/{id}", scope.LinksRead, getOf(&d.links))
	handle("POST /api/v1/links", scope.LinksWrite, d.createLink)
	handle("DELETE /api/v1/links/{id}", scope.LinksWrite, d.deleteLink)

	handle("GET /api/v1/sessions", scope.SessionsRead, listOf(&d.sessions))
	handle("GET /api/v1/sessions/{id}", scope.SessionsRead, getOf(&d.sessions))
	handle("POST /api/v1/sessions", scope.SessionsWrite, d.createSession)

	handle("GET /api/v1/webhooks", scope.WebhooksRead, listOf(&d.webhooks))
	handle("GET /api/v1/webhooks/{id}", scope.WebhooksRead, getOf(&d.webhooks))
	handle("POST /api/v1/webhooks", scope.WebhooksWrite, d.createWebhook)
	handle("DELETE /api/v1/webhooks/{id}", scope.WebhooksWrite, d.deleteWebhook)

	handle("GET /api/v1/events", scope.EventsRead, listOf(&d.events))
	handle("GET /api/v1/events/{id}", scope.EventsRead, getOf(&d.events))

	handle("GET /api/v1/customers", scope.CustomersRead, listOf(&d.customers))
	handle("GET /api/v1/customers/{id}", scope.CustomersRead, getOf(&d.customers))
	handle("POST /api/v1/customers", scope.CustomersWrite, d.createCustomer)
	// Unknown paths get the mux's 404, and known paths with another
	// method its 405 with an Allow header; both only with a valid key.
	return mux
}

// scoped passes h the tenant of the key that authenticated the request. It
// fails closed: without a key whose owner and mode are valid, which
// Authenticate always provides, the request gets 500 and touches no data.
func scoped(h scopedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, ok := middleware.KeyFrom(r.Context())
		if !ok || apikey.ValidOwner(key.Owner) != nil || !key.Mode.Valid() {
			problem.Write(w, problem.Problem{Status: http.StatusInternalServerError,
				Detail: "The request has no authenticated key; the API is served behind middleware.Authenticate only."})
			return
		}
		h(w, r, tenant{owner: key.Owner, mode: key.Mode})
	}
}

// list is the body of a list response.
type list[T any] struct {
	Object string `json:"object"`
	Data   []T    `json:"data"`
}

func listOf[T any](t *table[T]) scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, tn tenant) {
		writeJSON(w, http.StatusOK, list[T]{Object: "list", Data: t.list(tn)})
	}
}

func getOf[T any](t *table[T]) scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, tn tenant) {
		v, ok := t.get(tn, r.PathValue("id"))
		if !ok {
			notFound(w, r, tn)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// notFound answers an ID the tenant has no object with. An object of
// another merchant gets this very answer, so that no response tells that an
// ID exists elsewhere.
func notFound(w http.ResponseWriter, r *http.Request, tn tenant) {
	problem.Write(w, problem.Problem{Status: http.StatusNotFound,
		Detail: "No " + tn.mode.String() + "-mode object has the ID " + quoteID(r.PathValue("id")) + "."})
}

// quoteID returns id for a message, or "given" if it is too long or odd to
// repeat.
func quoteID(id string) string {
	if len(id) > 64 {
		return "given"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return "given"
		}
	}
	return id
}

// createSession creates a checkout session from the SDK's body.
func (d *data) createSession(w http.ResponseWriter, r *http.Request, tn tenant) {
	var in struct {
		Amount     *Amount           `json:"amount"`
		SuccessURL string            `json:"successUrl"`
		Metadata   map[string]string `json:"metadata"`
	}
	if !decode(w, r, &in) {
		return
	}
	var v validation
	amount := v.amount("/amount", in.Amount)
	v.url("/successUrl", in.SuccessURL)
	v.metadata("/metadata", in.Metadata)
	if v.failed(w) {
		return
	}
	s := Session{
		ID:         newID("cs", tn.mode),
		Object:     "checkout.session",
		Mode:       tn.mode,
		Status:     "open",
		Amount:     amount,
		SuccessURL: in.SuccessURL,
		Metadata:   in.Metadata,
		CreatedAt:  d.timestamp(),
	}
	if s.Metadata == nil {
		s.Metadata = map[string]string{}
	}
	d.sessions.add(tn, s.ID, s)
	d.emit(tn, "checkout.session.created", s, s.CreatedAt)
	w.Header().Set("Location", "/api/v1/sessions/"+s.ID)
	writeJSON(w, http.StatusCreated, s)
}

func (d *data) createLink(w http.ResponseWriter, r *http.Request, tn tenant) {
	var in struct {
		Name   string  `json:"name"`
		Amount *Amount `json:"amount"`
	}
	if !decode(w, r, &in) {
		return
	}
	var v validation
	v.text("/name", in.Name, true, 200)
	amount := v.amount("/amount", in.Amount)
	if v.failed(w) {
		return
	}
	l := Link{ID: newID("plink", tn.mode), Object: "payment_link", Mode: tn.mode, Name: in.Name, Amount: amount, CreatedAt: d.timestamp()}
	d.links.add(tn, l.ID, l)
	d.emit(tn, "payment_link.created", l, l.CreatedAt)
	w.Header().Set("Location", "/api/v1/links/"+l.ID)
	writeJSON(w, http.StatusCreated, l)
}

func (d *data) deleteLink(w http.ResponseWriter, r *http.Request, tn tenant) {
	l, ok := d.links.remove(tn, r.PathValue("id"))
	if !ok {
		notFound(w, r, tn)
		return
	}
	d.emit(tn, "payment_link.deleted", l, d.timestamp())
	w.WriteHeader(http.StatusNoContent)
}

func (d *data) createWebhook(w http.ResponseWriter, r *http.Request, tn tenant) {
	var in struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	if !decode(w, r, &in) {
		return
	}
	var v validation
	v.url("/url", in.URL)
	v.events("/events", in.Events)
	if v.failed(w) {
		return
	}
	wh := Webhook{ID: newID("we", tn.mode), Object: "webhook_endpoint", Mode: tn.mode, URL: in.URL, Events: in.Events, CreatedAt: d.timestamp()}
	d.webhooks.add(tn, wh.ID, wh)
	d.emit(tn, "webhook_endpoint.created", wh, wh.CreatedAt)
	w.Header().Set("Location", "/api/v1/webhooks/"+wh.ID)
	writeJSON(w, http.StatusCreated, wh)
}

func (d *data) deleteWebhook(w http.ResponseWriter, r *http.Request, tn tenant) {
	wh, ok := d.webhooks.remove(tn, r.PathValue("id"))
	if !ok {
		notFound(w, r, tn)
		return
	}
	d.emit(tn, "webhook_endpoint.deleted", wh, d.timestamp())
	w.WriteHeader(http.StatusNoContent)
}

func (d *data) createCustomer(w http.ResponseWriter, r *http.Request, tn tenant) {
	var in struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	if !decode(w, r, &in) {
		return
	}
	var v validation
	v.email("/email", in.Email)
	v.text("/name", in.Name, false, 200)
	if v.failed(w) {
		return
	}
	c := Customer{ID: newID("cus", tn.mode), Object: "customer", Mode: tn.mode, Email: in.Email, Name: in.Name, CreatedAt: d.timestamp()}
	d.customers.add(tn, c.ID, c)
	d.emit(tn, "customer.created", c, c.CreatedAt)
	w.Header().Set("Location", "/api/v1/customers/"+c.ID)
	writeJSON(w, http.StatusCreated, c)
}
