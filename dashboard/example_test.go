package dashboard_test

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/store/memory"
)

// The dashboard mounted at /dashboard/ behind HTTP Basic authentication
// with one operator password, where the user name says who signs in: each
// user is an operator of one account with one role. A real deployment
// would use its own sign-in instead.
func Example() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	// Who may sign in: their account and what they may do there.
	operators := map[string]dashboard.Operator{
		"ada":   {Name: "ada", Owner: "acct_ada", Role: dashboard.Admin},
		"grace": {Name: "grace", Owner: "acct_ada", Role: dashboard.Developer},
	}
	password := "correct horse battery staple" // from a flag or a secret store
	want := sha256.Sum256([]byte(password))
	dash, err := dashboard.New(keys,
		func(r *http.Request) (dashboard.Operator, error) {
			user, pass, ok := r.BasicAuth()
			// Compare digests in constant time: comparing the passwords
			// themselves would reveal the password's length.
			got := sha256.Sum256([]byte(pass))
			if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				return dashboard.Operator{}, errors.New("no valid operator credentials")
			}
			op, ok := operators[user]
			if !ok {
				return dashboard.Operator{}, errors.New("unknown operator")
			}
			return op, nil
		},
		dashboard.WithUnauthorized(func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("WWW-Authenticate", `Basic realm="dashboard", charset="UTF-8"`)
			http.Error(w, "operator sign-in required", http.StatusUnauthorized)
		}),
		dashboard.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))

	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Create a live key through the JSON API: without credentials, as a
	// developer (who manages test keys only), and as an admin.
	create := func(user string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/dashboard/keys",
			strings.NewReader(`{"name": "Production server", "mode": "live", "scopes": ["sessions:write"]}`))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		return resp
	}
	resp := create("")
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("WWW-Authenticate"))

	resp = create("grace")
	resp.Body.Close()
	fmt.Println(resp.Status)

	resp = create("ada")
	defer resp.Body.Close()
	var out struct {
		RawKey string `json:"raw_key"`
		Key    struct {
			Name   string `json:"name"`
			Owner  string `json:"owner"`
			Status string `json:"status"`
		} `json:"key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status, out.Key.Name, out.Key.Owner, out.Key.Status, strings.HasPrefix(out.RawKey, "ck_live_"))
	// Output:
	// 401 Unauthorized Basic realm="dashboard", charset="UTF-8"
	// 403 Forbidden
	// 201 Created Production server acct_ada active true
}

// The user is the application's signed-in user, which its own sign-in
// middleware puts in the request's context.
type user struct {
	Email      string
	AccountID  string
	IsOwner    bool // the account's owner: an admin
	IsEngineer bool
}

type userKey struct{}

// An AuthorizeFunc that maps the application's signed-in user to an
// operator: the account they belong to, and a role from their
// permissions. Anyone else is refused.
func ExampleAuthorizeFunc() {
	authorize := func(r *http.Request) (dashboard.Operator, error) {
		u, ok := r.Context().Value(userKey{}).(user)
		if !ok {
			return dashboard.Operator{}, errors.New("not signed in")
		}
		op := dashboard.Operator{Name: u.Email, Owner: u.AccountID, Role: dashboard.Viewer}
		switch {
		case u.IsOwner:
			op.Role = dashboard.Admin
		case u.IsEngineer:
			op.Role = dashboard.Developer
		}
		return op, nil
	}

	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	dash, err := dashboard.New(keys, authorize, dashboard.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}

	// Each user asks for a test key.
	for _, u := range []user{
		{Email: "sam@example.com", AccountID: "acct_42"},
		{Email: "eli@example.com", AccountID: "acct_42", IsEngineer: true},
	} {
		req := httptest.NewRequest("POST", "/keys",
			strings.NewReader(`{"name": "Staging", "mode": "test", "scopes": ["events:read"]}`))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(context.WithValue(req.Context(), userKey{}, u))
		w := httptest.NewRecorder()
		dash.ServeHTTP(w, req)
		fmt.Println(u.Email, w.Code)
	}
	// Output:
	// sam@example.com 403
	// eli@example.com 201
}

// Every change made in the dashboard is the lifecycle's to record: the
// store keeps it in the account's audit trail, with the change itself,
// and the lifecycle passes it to its subscribers, both naming the
// operator as the actor. The key's page shows its history from that
// trail.
func Example_auditTrail() {
	keys, err := keyward.New(memory.New(),
		keyward.WithSubscriber(keyward.SubscriberFunc(func(ctx context.Context, e audit.Event) {
			fmt.Printf("event: %s by %s in %s\n", e.Kind, e.Actor, e.Owner)
		})),
		keyward.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	dash, err := dashboard.New(keys,
		func(r *http.Request) (dashboard.Operator, error) { // your operator check
			return dashboard.Operator{Name: "ada@example.com", Owner: "acct_123", Role: dashboard.Admin}, nil
		},
		dashboard.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}

	req := httptest.NewRequest("POST", "/keys",
		strings.NewReader(`{"name": "Staging", "mode": "test", "scopes": ["events:read"]}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	dash.ServeHTTP(w, req)
	fmt.Println(w.Code)

	page, err := keys.Owner("acct_123").Audit(context.Background(), keyward.AuditOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range page.Entries {
		fmt.Printf("trail: %s by %s (%s)\n", e.Kind, e.Actor.ID, e.Actor.Type)
	}
	// Output:
	// event: key.created by operator:ada@example.com in acct_123
	// 201
	// trail: key.created by ada@example.com (operator)
}

// A client that retries a create after a timeout sends the same
// Idempotency-Key: the retry creates nothing, and answers 200 with the key
// the first request created, without its raw key.
func ExampleHandler_idempotency() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	dash, err := dashboard.New(keys,
		func(r *http.Request) (dashboard.Operator, error) {
			return dashboard.Operator{Name: "deploy-bot", Owner: "acct_123", Role: dashboard.Developer}, nil
		},
		dashboard.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}

	for range 2 {
		req := httptest.NewRequest("POST", "/keys",
			strings.NewReader(`{"name": "CI", "mode": "test", "scopes": ["sessions:write"]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "3f2a6c1e-ci-key")
		w := httptest.NewRecorder()
		dash.ServeHTTP(w, req)
		var out map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			log.Fatal(err)
		}
		_, shown := out["raw_key"]
		fmt.Printf("%d raw key shown: %v, Idempotent-Replayed: %q\n", w.Code, shown, w.Header().Get("Idempotent-Replayed"))
	}
	// Output:
	// 201 raw key shown: true, Idempotent-Replayed: ""
	// 200 raw key shown: false, Idempotent-Replayed: "true"
}

// The dashboard given the limiter that the API's middleware counts
// requests with: the page of a key with limits shows how much of them is
// used. The dashboard only looks; it never counts a request.
func ExampleWithLimiter() {
	now := time.Date(2031, 3, 14, 9, 30, 0, 0, time.UTC)
	keys, err := keyward.New(memory.New(), keyward.WithClock(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	limiter := limit.NewMemory() // shared with the middleware
	dash, err := dashboard.New(keys,
		func(r *http.Request) (dashboard.Operator, error) {
			return dashboard.Operator{Name: "ada@example.com", Owner: "acct_123", Role: dashboard.Admin}, nil
		},
		dashboard.WithLimiter(limiter),
		dashboard.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}

	// A key with a rate limit of 100 requests an hour, in bursts of 20,
	// and a quota of 1,000 a day.
	req := httptest.NewRequest("POST", "/keys", strings.NewReader(`{"name": "Partner", "mode": "live", "scopes": ["links:read"],
		"policy": {"rate": {"requests": 100, "period": "1h", "burst": 20}, "quota": {"requests": 1000, "per": "day"}}}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	dash.ServeHTTP(w, req)
	var created struct {
		Key apikey.Record `json:"key"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil {
		log.Fatal(err)
	}

	// The middleware lets three requests through.
	for range 3 {
		if _, err := limiter.Allow(context.Background(), created.Key.ID, created.Key.Policy, keys.Now()); err != nil {
			log.Fatal(err)
		}
	}

	req = httptest.NewRequest("GET", "/keys/"+created.Key.ID.String(), nil)
	req.Header.Set("Accept", "text/html")
	w = httptest.NewRecorder()
	dash.ServeHTTP(w, req)
	usage := regexp.MustCompile(`<p id="usage-\w+"><strong>(\w+:)</strong> ([^<]*)</p>`)
	for _, m := range usage.FindAllStringSubmatch(w.Body.String(), -1) {
		fmt.Println(m[1], html.UnescapeString(m[2]))
	}
	// Output:
	// Rate: 17 of 20 left, full in 1 min 48 s
	// Quota: 3 of 1,000 used today, resets at 00:00 UTC
}
