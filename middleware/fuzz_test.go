package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/middleware"
)

// FuzzAuthorizationHeader sends arbitrary Authorization and X-API-Key
// values ("\n" separates repeated headers) to Authenticate, with and
// without options, and checks that nothing panics, that only a request
// carrying a valid key reaches the next handler, and that a healthy store
// never yields a 5xx.
func FuzzAuthorizationHeader(f *testing.F) {
	e := newEnv(f)
	valid := map[string]string{ // record ID -> raw key
		e.all.Record.ID.String():      e.all.Raw,
		e.live.Record.ID.String():     e.live.Raw,
		e.sessions.Record.ID.String(): e.sessions.Raw,
	}
	for _, s := range []string{
		"", " ", "Bearer", "Bearer ", "bearer " + e.all.Raw, "Bearer " + e.live.Raw,
		"Bearer " + e.sessions.Raw, "Bearer " + e.revoked.Raw, "Bearer " + e.expired.Raw,
		"Bearer " + e.unknown, e.all.Raw, "Basic dXNlcjpwYXNz", "Bearer a b",
		"Bearer " + e.all.Raw + "\nBearer " + e.all.Raw, "Bearer " + e.all.Raw + "\x00",
		"Bearer ck_test_", "Bearer ck_live_" + strings.Repeat("z", 32), "Bearer ===",
		"Bearer " + strings.Repeat("A", 2000), "BeArEr\t" + e.all.Raw, "Bearer " + e.all.Raw + "é",
	} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Add("Bearer "+e.all.Raw, e.live.Raw)

	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, ok := middleware.KeyFrom(r.Context())
		if !ok {
			panic("reached the next handler without a key")
		}
		w.Header().Set("X-Key-ID", rec.ID.String())
		w.Header().Set("X-Key-Mode", rec.Mode.String())
		w.WriteHeader(http.StatusNoContent)
	})
	handlers := []struct {
		name      string
		h         http.Handler
		keyHeader bool
		mode      apikey.Mode
	}{
		{"default", middleware.Authenticate(e.keys)(next), false, 0},
		{"key header, live only", middleware.Authenticate(e.keys, middleware.WithKeyHeader("X-API-Key"), middleware.WithMode(apikey.Live))(next), true, apikey.Live},
	}

	f.Fuzz(func(t *testing.T, auth, keyHeader string) {
		for _, hc := range handlers {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if auth != "" {
				r.Header["Authorization"] = strings.Split(auth, "\n")
			}
			if keyHeader != "" {
				r.Header["X-Api-Key"] = strings.Split(keyHeader, "\n")
			}
			rr := httptest.NewRecorder()
			hc.h.ServeHTTP(rr, r)

			if rr.Code >= 500 {
				t.Fatalf("%s: status %d with a healthy store; body %s", hc.name, rr.Code, rr.Body)
			}
			for _, raw := range e.raws() {
				if strings.Contains(rr.Body.String(), raw) {
					t.Fatalf("%s: the body contains a raw key", hc.name)
				}
			}
			if rr.Code == http.StatusNoContent {
				id := rr.Header().Get("X-Key-ID")
				raw, ok := valid[id]
				if !ok {
					t.Fatalf("%s: reached the next handler with key %s, which is not a valid key", hc.name, id)
				}
				sent := auth
				if hc.keyHeader {
					sent += "\n" + keyHeader
				}
				if !strings.Contains(sent, raw) {
					t.Fatalf("%s: reached the next handler as key %s, which the request does not carry", hc.name, id)
				}
				if hc.mode != 0 && rr.Header().Get("X-Key-Mode") != hc.mode.String() {
					t.Fatalf("%s: a %s key passed a %s-only route", hc.name, rr.Header().Get("X-Key-Mode"), hc.mode)
				}
				continue
			}
			if !slices.Contains([]int{http.StatusBadRequest, http.StatusUnauthorized}, rr.Code) {
				t.Fatalf("%s: status %d, want 204, 400 or 401", hc.name, rr.Code)
			}
			if rr.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("%s: %d without a challenge", hc.name, rr.Code)
			}
			if p := decodeProblem(t, rr); p.Status != rr.Code {
				t.Fatalf("%s: body status %d, response %d", hc.name, p.Status, rr.Code)
			}
			// A request with exactly one well-formed Bearer valid key must
			// pass the default handler.
			if hc.name == "default" && slices.Contains([]string{"Bearer " + e.all.Raw, "Bearer " + e.live.Raw, "Bearer " + e.sessions.Raw}, auth) {
				t.Fatalf("%s: a valid key was refused with %d", hc.name, rr.Code)
			}
		}
	})
}
