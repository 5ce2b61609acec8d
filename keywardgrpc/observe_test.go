package keywardgrpc_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardgrpc"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/scope"
)

// refusals records the refusals the lifecycle tells its observer of.
type refusals struct {
	mu  sync.Mutex
	got []keyward.Outcome
}

func (*refusals) ObserveVerify(context.Context, keyward.Outcome, time.Duration) {}

func (r *refusals) ObserveRefusal(_ context.Context, o keyward.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, o)
}

func (r *refusals) take() []keyward.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// TestRefusalsAreCounted checks that calls refused after their key was
// verified (a missing scope, a network, a limit) are counted against the
// key, with their outcome, for both kinds of calls; and that neither an
// invalid key nor an undeclared method is.
func TestRefusalsAreCounted(t *testing.T) {
	obs := new(refusals)
	keys := keywardtest.NewKeys(t, keyward.WithObserver(obs))
	acct := keys.Owner("acct_grpc")
	every := scope.NewSet(scope.Default.Scopes()...)
	links := keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: scope.NewSet(scope.LinksRead)})
	elsewhere := keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every, Policy: &apikey.Policy{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}})
	s := newServer(t, keys, scoped(), keywardgrpc.WithLimiter(limit.NewMemory()))
	for _, k := range kinds {
		slow := keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every, Policy: &apikey.Policy{
			Rate: apikey.RateLimit{Requests: 1, Period: time.Minute},
		}})
		for _, tc := range []struct {
			name string
			raw  string
			code codes.Code
			want []keyward.Outcome
		}{
			{"scope", links.Raw, codes.PermissionDenied, []keyward.Outcome{keyward.OutcomeInsufficientScope}},
			{"network", elsewhere.Raw, codes.PermissionDenied, []keyward.Outcome{keyward.OutcomeNetworkRefused}},
			{"first of the rate", slow.Raw, codes.OK, nil},
			{"over the rate", slow.Raw, codes.ResourceExhausted, []keyward.Outcome{keyward.OutcomeLimited}},
			{"invalid key", "ck_test_nope", codes.Unauthenticated, nil},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				_, err := k.call(authorized(withTimeout(t), "Bearer "+tc.raw), s.client)
				if got := status.Code(err); got != tc.code {
					t.Fatalf("code = %v (%v), want %v", got, err, tc.code)
				}
				if got := obs.take(); !slices.Equal(got, tc.want) {
					t.Errorf("refusals observed %v, want %v", got, tc.want)
				}
			})
		}
	}
	// An undeclared method is the server's mistake, not the key's.
	undeclared := newServer(t, keys, keywardgrpc.WithMethodScopes(map[string][]scope.Scope{methodWatch: nil}))
	if _, err := kinds[0].call(authorized(withTimeout(t), "Bearer "+links.Raw), undeclared.client); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("undeclared method: %v, want PermissionDenied", err)
	}
	if got := obs.take(); got != nil {
		t.Errorf("undeclared method: refusals observed %v, want none", got)
	}
}
