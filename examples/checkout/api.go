package main

import (
	"crypto/rand"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
)

// The API's resources. Each belongs to the mode of the key that created
// it: test keys see test data only, live keys live data only.

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

// table holds one resource, oldest first.
type table[T any] struct {
	mu   sync.RWMutex
	rows []row[T]
}

type row[T any] struct {
	id   string
	mode apikey.Mode
	v    T
}

func (t *table[T]) add(id string, mode apikey.Mode, v T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, row[T]{id, mode, v})
}

// list returns the rows of mode, newest first.
func (t *table[T]) list(mode apikey.Mode) []T {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := []T{}
	for i := len(t.rows) - 1; i >= 0; i-- {
		if t.rows[i].mode == mode {
			out = append(out, t.rows[i].v)
		}
	}
	return out
}

func (t *table[T]) get(id string, mode apikey.Mode) (T, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, r := range t.rows {
		if r.id == id && r.mode == mode {
			return r.v, true
		}
	}
	var zero T
	return zero, false
}

func (t *table[T]) remove(id string, mode apikey.Mode) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.rows {
		if r.id == id && r.mode == mode {
			t.rows = slices.Delete(t.rows, i, i+1)
			return r.v, true
		}
	}
	var zero T
	return zero, false
}

// data is the API's in-memory database.
type data struct {
	now       func() time.Time
	links     table[Link]
	sessions  table[Session]
	webhooks  table[Webhook]
	events    table[Event]
	customers table[Customer]
}

// newData returns the database with a few test-mode records, created at
// now, so that the first GET shows something.
func newData(now time.Time) *data {
	d := &data{now: time.Now}
	at := now.UTC().Truncate(time.Second)
	for _, c := range []Customer{
		{Email: "ada@example.com", Name: "Ada Lovelace"},
		{Email: "grace@example.com", Name: "Grace Hopper"},
	} {
		c.ID, c.Object, c.Mode, c.CreatedAt = newID("cus", apikey.Test), "customer", apikey.Test, at
		d.customers.add(c.ID, c.Mode, c)
		d.emit(apikey.Test, "customer.created", c, at)
	}
	l := Link{ID: newID("plink", apikey.Test), Object: "payment_link", Mode: apikey.Test,
		Name: "T-shirt", Amount: Amount{Value: "25.00", Currency: "USD"}, CreatedAt: at}
	d.links.add(l.ID, l.Mode, l)
	d.emit(apikey.Test, "payment_link.created", l, at)
	return d
}

// newID returns a random ID such as "cs_test_NBXZ...".
func newID(prefix string, mode apikey.Mode) string {
	return prefix + "_" + mode.String() + "_" + rand.Text()
}

func (d *data) timestamp() time.Time { return d.now().UTC().Truncate(time.Second) }

func (d *data) emit(mode apikey.Mode, typ string, obj any, at time.Time) {
	e := Event{ID: newID("evt", mode), Object: "event", Mode: mode, Type: typ, Data: obj, CreatedAt: at}
	d.events.add(e.ID, mode, e)
}

// routes returns the API, each route guarded by its scope. It goes behind
// middleware.Authenticate.
func (d *data) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, s scope.Scope, h http.HandlerFunc) {
		mux.Handle(pattern, middleware.RequireScopes(s)(h))
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

// keyMode returns the mode of the key that authenticated r.
func keyMode(r *http.Request) apikey.Mode {
	key, _ := middleware.KeyFrom(r.Context()) // always there behind Authenticate
	return key.Mode
}

// list is the body of a list response.
type list[T any] struct {
	Object string `json:"object"`
	Data   []T    `json:"data"`
}

func listOf[T any](t *table[T]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, list[T]{Object: "list", Data: t.list(keyMode(r))})
	}
}

func getOf[T any](t *table[T]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := t.get(r.PathValue("id"), keyMode(r))
		if !ok {
			notFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, http.StatusNotFound, "Not found", "No "+keyMode(r).String()+"-mode object has the ID "+quoteID(r.PathValue("id"))+".", nil)
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
func (d *data) createSession(w http.ResponseWriter, r *http.Request) {
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
	mode := keyMode(r)
	s := Session{
		ID:         newID("cs", mode),
		Object:     "checkout.session",
		Mode:       mode,
		Status:     "open",
		Amount:     amount,
		SuccessURL: in.SuccessURL,
		Metadata:   in.Metadata,
		CreatedAt:  d.timestamp(),
	}
	if s.Metadata == nil {
		s.Metadata = map[string]string{}
	}
	d.sessions.add(s.ID, mode, s)
	d.emit(mode, "checkout.session.created", s, s.CreatedAt)
	w.Header().Set("Location", "/api/v1/sessions/"+s.ID)
	writeJSON(w, http.StatusCreated, s)
}

func (d *data) createLink(w http.ResponseWriter, r *http.Request) {
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
	mode := keyMode(r)
	l := Link{ID: newID("plink", mode), Object: "payment_link", Mode: mode, Name: in.Name, Amount: amount, CreatedAt: d.timestamp()}
	d.links.add(l.ID, mode, l)
	d.emit(mode, "payment_link.created", l, l.CreatedAt)
	w.Header().Set("Location", "/api/v1/links/"+l.ID)
	writeJSON(w, http.StatusCreated, l)
}

func (d *data) deleteLink(w http.ResponseWriter, r *http.Request) {
	mode := keyMode(r)
	l, ok := d.links.remove(r.PathValue("id"), mode)
	if !ok {
		notFound(w, r)
		return
	}
	d.emit(mode, "payment_link.deleted", l, d.timestamp())
	w.WriteHeader(http.StatusNoContent)
}

func (d *data) createWebhook(w http.ResponseWriter, r *http.Request) {
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
	mode := keyMode(r)
	wh := Webhook{ID: newID("we", mode), Object: "webhook_endpoint", Mode: mode, URL: in.URL, Events: in.Events, CreatedAt: d.timestamp()}
	d.webhooks.add(wh.ID, mode, wh)
	d.emit(mode, "webhook_endpoint.created", wh, wh.CreatedAt)
	w.Header().Set("Location", "/api/v1/webhooks/"+wh.ID)
	writeJSON(w, http.StatusCreated, wh)
}

func (d *data) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	mode := keyMode(r)
	wh, ok := d.webhooks.remove(r.PathValue("id"), mode)
	if !ok {
		notFound(w, r)
		return
	}
	d.emit(mode, "webhook_endpoint.deleted", wh, d.timestamp())
	w.WriteHeader(http.StatusNoContent)
}

func (d *data) createCustomer(w http.ResponseWriter, r *http.Request) {
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
	mode := keyMode(r)
	c := Customer{ID: newID("cus", mode), Object: "customer", Mode: mode, Email: in.Email, Name: in.Name, CreatedAt: d.timestamp()}
	d.customers.add(c.ID, mode, c)
	d.emit(mode, "customer.created", c, c.CreatedAt)
	w.Header().Set("Location", "/api/v1/customers/"+c.ID)
	writeJSON(w, http.StatusCreated, c)
}
