package dashboard_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/scope"
)

// TestOtherAccountsKeysAreUnknown walks every route that takes a key ID,
// HTML and JSON, reads and changes, with the IDs of another account's
// keys, in every state, as every role, and checks that each answer is byte
// for byte the answer to an ID that no key has (with the ID itself
// replaced in both): nothing tells an operator that the ID exists
// elsewhere. Then it checks that nothing of the other account changed.
func TestOtherAccountsKeysAreUnknown(t *testing.T) {
	limiter := limit.NewMemory()
	f := newFixture(t, dashboard.WithLimiter(limiter))
	ctx := context.Background()

	// The operator's own keys, so that the account is not empty.
	_, mine := f.create("Mine", apikey.Live)
	f.create("Mine", apikey.Test)

	// The other account's keys: live and test, active, revoked, rotated
	// (the old key in its overlap, and its replacement), expired, exposed,
	// and canaries, one of them tripped.
	foreign := map[string]uuid.UUID{}
	raws := map[string]string{}
	newForeignKey := func(name string, m apikey.Mode, canary bool) apikey.Record {
		raw, rec := f.createFor(f.other, keyward.CreateParams{Name: name, Mode: m, Canary: canary,
			Scopes: scope.NewSet(scope.SessionsWrite, scope.LinksRead), Metadata: map[string]string{"secret": "plan"}})
		foreign[name], raws[name] = rec.ID, raw
		return rec
	}
	newForeign := func(name string, m apikey.Mode) apikey.Record { return newForeignKey(name, m, false) }
	newForeign("active live", apikey.Live)
	newForeign("active test", apikey.Test)
	revoked := newForeign("revoked test", apikey.Test)
	if _, err := f.other.Revoke(ctx, revoked.ID, keyward.RevokeParams{Reason: "Mallory's secret reason"}); err != nil {
		t.Fatal(err)
	}
	newForeign("exposed live", apikey.Live)
	if _, err := f.keys.ReportExposure(ctx, raws["exposed live"], keyward.Exposure{Source: "github", URL: "https://github.com/mallory/plan"}); err != nil {
		t.Fatal(err)
	}
	newForeignKey("canary live", apikey.Live, true)
	// A key with limits, which the limiter has counted uses of.
	_, withPolicy := f.createFor(f.other, keyward.CreateParams{Name: "limited live", Mode: apikey.Live, Policy: limited(),
		Scopes: scope.NewSet(scope.SessionsWrite, scope.LinksRead)})
	foreign["limited live"] = withPolicy.ID
	if _, err := limiter.Allow(ctx, withPolicy.ID, withPolicy.Policy, f.keys.Now()); err != nil {
		t.Fatal(err)
	}
	newForeignKey("tripped canary test", apikey.Test, true)
	f.trip(raws["tripped canary test"], keyward.Caller{Addr: "192.0.2.66:4444", UserAgent: "mallory-scanner", Method: "GET", Path: "/v1/plan"})
	rotated := newForeign("rotated live", apikey.Live)
	_, repl, err := f.other.Rotate(ctx, rotated.ID, keyward.RotateParams{Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	foreign["replacement live"] = repl.ID
	expired := newForeign("expired test", apikey.Test)
	if _, _, err := f.other.Rotate(ctx, expired.ID, keyward.RotateParams{}); err != nil {
		t.Fatal(err)
	}
	before := f.all(f.other)

	// What an answer is made of, with the ID normalised.
	type answer struct {
		Status int
		Header http.Header
		Body   string
	}
	answerOf := func(c call, id string) answer {
		w := f.do(c)
		h := http.Header{}
		for _, k := range []string{"Content-Type", "Location", "Allow", "Idempotent-Replayed", "Www-Authenticate", "Cache-Control"} {
			if v := w.Header().Values(k); v != nil {
				h[k] = v
			}
		}
		norm := func(s string) string { return strings.ReplaceAll(s, id, "{id}") }
		if loc := h.Get("Location"); loc != "" {
			h.Set("Location", norm(loc))
		}
		return answer{Status: w.Code, Header: h, Body: norm(w.Body.String())}
	}

	ids := []struct{ name, id string }{}
	for name, id := range foreign {
		ids = append(ids, struct{ name, id string }{name, id.String()})
	}
	var checked int
	for _, rt := range routes {
		if !strings.Contains(rt.path, "{id}") {
			continue
		}
		for _, role := range roles {
			t.Run(rt.name+"/"+string(role), func(t *testing.T) {
				unknown := uuid.NewString()
				want := answerOf(rt.call(unknown, as(role)), unknown)
				switch {
				case rt.kind == changeKey && role == dashboard.Viewer:
					// A role that may change nothing is refused before any
					// key is read: the same 403 for its own keys too.
					if want.Status != http.StatusForbidden {
						t.Fatalf("an unknown ID got %d, want 403 for a viewer", want.Status)
					}
					if got := answerOf(rt.call(mine.ID.String(), as(role)), mine.ID.String()); !reflect.DeepEqual(got, want) {
						t.Errorf("a viewer's own key got\n%+v\nan unknown ID got\n%+v", got, want)
					}
				case want.Status != http.StatusNotFound:
					t.Fatalf("an unknown ID got %d, want 404", want.Status)
				}
				for _, k := range ids {
					got := answerOf(rt.call(k.id, as(role)), k.id)
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s: the other account's key got\n%+v\nan unknown ID got\n%+v", k.name, got, want)
					}
					checked++
				}
				// Text that is no key ID gets the same answer too.
				if got := answerOf(rt.call("not-a-key-id", as(role)), "not-a-key-id"); !reflect.DeepEqual(got, want) {
					t.Errorf("a malformed ID got\n%+v\nan unknown ID got\n%+v", got, want)
				}
			})
		}
	}
	if checked == 0 {
		t.Fatal("no route was walked")
	}

	t.Run("the list's revocation notice", func(t *testing.T) {
		unknown := uuid.NewString()
		want := answerOf(call{method: "GET", path: "/dashboard/keys?revoked=" + unknown, header: http.Header{"Accept": {browserAccept}}}, unknown)
		for _, k := range ids {
			got := answerOf(call{method: "GET", path: "/dashboard/keys?revoked=" + k.id, header: http.Header{"Accept": {browserAccept}}}, k.id)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: the list with ?revoked= of the other account's key differs from an unknown ID's", k.name)
			}
		}
	})
	t.Run("lists and counts", func(t *testing.T) {
		w := f.api("GET", "/dashboard/keys", "")
		if out := decodeJSON[listOut](t, w); len(out.Keys) != 2 {
			t.Errorf("the list has %d keys, want the account's 2", len(out.Keys))
		}
		_, _, body := f.page("GET", "/dashboard/keys/revoke-all", nil)
		mustContain(t, body, "This revokes <strong>2 active keys</strong>")
		for _, id := range foreign {
			mustNotContain(t, body, id.String())
		}
	})

	if after := f.all(f.other); !reflect.DeepEqual(after, before) {
		t.Errorf("the other account's keys changed:\nbefore %+v\nafter  %+v", before, after)
	}
	for _, e := range f.audited() {
		t.Errorf("an audited change: %+v", e)
	}
	if logs := f.logs.String(); strings.Contains(logs, "plan") || strings.Contains(logs, "Mallory's secret reason") {
		t.Error("the other account's metadata or revocation reason was logged")
	}
	if trips, err := f.other.Trips(ctx, foreign["tripped canary test"], 0); err != nil || len(trips) != 1 {
		t.Errorf("the other account's canary has %d trips (%v), want its 1", len(trips), err)
	}
	// The lifecycle agrees: the other account still has its keys, unchanged.
	for name, id := range foreign {
		if _, err := f.other.Get(ctx, id); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestRevokeAllTouchesOneAccount revokes all keys of one account, through
// the form and the API, and checks that the other account's keys still
// work.
func TestRevokeAllTouchesOneAccount(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raws := map[string]string{}
	for _, m := range []apikey.Mode{apikey.Live, apikey.Test} {
		raw, _ := f.createFor(f.other, keyward.CreateParams{Name: "Other " + m.String(), Mode: m})
		raws[m.String()] = raw
		f.create("Mine "+m.String(), m)
	}
	if status, _, _ := f.page("POST", "/dashboard/keys/revoke-all", url.Values{}); status != http.StatusSeeOther {
		t.Fatalf("revoke all: %d", status)
	}
	for m, raw := range raws {
		if _, err := f.keys.Verify(ctx, raw); err != nil {
			t.Errorf("the other account's %s key no longer verifies: %v", m, err)
		}
	}
	for _, rec := range f.all(f.owner) {
		if !rec.Revoked() {
			t.Errorf("the account's key %q survived", rec.Name)
		}
	}
	// And the other account's admin sees only its own keys still active.
	w := f.do(call{method: "GET", path: "/dashboard/keys?status=active", header: http.Header{"X-Account": {otherAccount}}})
	if out := decodeJSON[listOut](t, w); len(out.Keys) != 2 {
		t.Errorf("the other account has %d active keys, want 2", len(out.Keys))
	}
}
