package keywardgrpc_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardgrpc"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/scope"
)

// limitedStart is the time of the calls in the rate-limit tests: 10 hours
// before the end of the quota's day.
var limitedStart = time.Date(2026, 5, 1, 14, 0, 0, 0, time.UTC)

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// limitedEnv is a lifecycle on a fixed clock with keys of each policy.
type limitedEnv struct {
	keys *keyward.Keys
	log  *logBuffer

	rate     keywardtest.Key // 2 requests per minute
	quota    keywardtest.Key // 2 requests per day
	both     keywardtest.Key // both, the rate limit reached first
	plain    keywardtest.Key // no policy
	networks keywardtest.Key // a policy of networks only
}

func newLimitedEnv(t *testing.T) *limitedEnv {
	t.Helper()
	e := &limitedEnv{log: new(logBuffer)}
	e.keys = keywardtest.NewKeys(t,
		keyward.WithClock(func() time.Time { return limitedStart }),
		keyward.WithLogger(slog.New(slog.NewTextHandler(e.log, nil))))
	acct := e.keys.Owner("acct_grpc")
	issue := func(p *apikey.Policy) keywardtest.Key {
		return keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsWrite), Policy: p})
	}
	rate := apikey.RateLimit{Requests: 2, Period: time.Minute}
	quota := apikey.Quota{Requests: 2, Per: apikey.Day}
	e.rate = issue(&apikey.Policy{Rate: rate})
	e.quota = issue(&apikey.Policy{Quota: quota})
	e.both = issue(&apikey.Policy{Rate: rate, Quota: apikey.Quota{Requests: 5, Per: apikey.Day}})
	e.plain = issue(nil)
	e.networks = issue(&apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	return e
}

// countingLimiter counts the calls of Allow, and fails while err is set.
type countingLimiter struct {
	limit.Limiter
	calls atomic.Int64
	err   atomic.Pointer[error]
}

func (l *countingLimiter) Allow(ctx context.Context, id uuid.UUID, p *apikey.Policy, now time.Time) (limit.Decision, error) {
	l.calls.Add(1)
	if err := l.err.Load(); err != nil {
		return limit.Decision{}, *err
	}
	return l.Limiter.Allow(ctx, id, p, now)
}

func (l *countingLimiter) fail(err error) { l.err.Store(&err) }

// exhausted checks that err is ResourceExhausted with a RetryInfo of
// delay and a QuotaFailure naming subjects.
func exhausted(t *testing.T, err error, delay time.Duration, subjects ...string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("code = %v (%v), want ResourceExhausted", st.Code(), err)
	}
	var retry *errdetails.RetryInfo
	var qf *errdetails.QuotaFailure
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			retry = d
		case *errdetails.QuotaFailure:
			qf = d
		default:
			t.Errorf("unexpected detail %T: %v", d, d)
		}
	}
	if retry == nil {
		t.Error("no RetryInfo")
	} else if got := retry.GetRetryDelay().AsDuration(); got != delay {
		t.Errorf("RetryDelay = %v, want %v", got, delay)
	}
	if qf == nil {
		t.Fatal("no QuotaFailure")
	}
	var got []string
	for _, v := range qf.GetViolations() {
		got = append(got, v.GetSubject())
		if v.GetDescription() == "" {
			t.Errorf("violation %q has no description", v.GetSubject())
		}
	}
	if strings.Join(got, ",") != strings.Join(subjects, ",") {
		t.Errorf("violations = %v, want %v", got, subjects)
	}
}

func TestLimiterEnforcesPolicies(t *testing.T) {
	for _, k := range kinds {
		for _, tc := range []struct {
			name     string
			key      func(*limitedEnv) keywardtest.Key
			delay    time.Duration
			subjects []string
		}{
			{"rate", func(e *limitedEnv) keywardtest.Key { return e.rate }, 30 * time.Second, []string{"rate"}},
			{"quota", func(e *limitedEnv) keywardtest.Key { return e.quota }, 10 * time.Hour, []string{"quota"}},
			{"rate and quota", func(e *limitedEnv) keywardtest.Key { return e.both }, 30 * time.Second, []string{"rate"}},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				e := newLimitedEnv(t)
				l := &countingLimiter{Limiter: limit.NewMemory()}
				s := newServer(t, e.keys, scoped(), keywardgrpc.WithLimiter(l))
				key := tc.key(e)
				for i := range 2 {
					got, err := k.call(authorized(withTimeout(t), "Bearer "+key.Raw), s.client)
					if err != nil {
						t.Fatalf("call %d: %v", i+1, err)
					}
					if got != key.Record.ID.String() {
						t.Errorf("call %d: handler found key %q", i+1, got)
					}
				}
				_, err := k.call(authorized(withTimeout(t), "Bearer "+key.Raw), s.client)
				exhausted(t, err, tc.delay, tc.subjects...)
				if n := s.health.calls.Load(); n != 2 {
					t.Errorf("handler calls = %d, want 2", n)
				}
				if n := l.calls.Load(); n != 3 {
					t.Errorf("limiter calls = %d, want 3", n)
				}
				if strings.Contains(e.log.String(), "not enforced") {
					t.Errorf("warned of unenforced limits with a limiter:\n%s", e.log)
				}
			})
		}
	}
}

// TestLimiterOnlyForLimitedKeys checks that keys without a rate limit or
// quota never reach the limiter, nor do refused calls.
func TestLimiterOnlyForLimitedKeys(t *testing.T) {
	e := newLimitedEnv(t)
	l := &countingLimiter{Limiter: limit.NewMemory()}
	s := newServer(t, e.keys, scoped(), keywardgrpc.WithLimiter(l))
	for _, k := range kinds {
		for _, key := range []keywardtest.Key{e.plain, e.networks} {
			for i := range 5 {
				if _, err := k.call(authorized(withTimeout(t), "Bearer "+key.Raw), s.client); err != nil {
					t.Fatalf("%s call %d: %v", k.name, i, err)
				}
			}
		}
		// Refused before the limiter: a missing scope, an undeclared method.
		_, err := k.call(authorized(withTimeout(t), "Bearer "+e.rate.Raw), newServer(t, e.keys,
			keywardgrpc.WithMethodScopes(map[string][]scope.Scope{methodCheck: {scope.SessionsRead}, methodWatch: {scope.SessionsRead}}),
			keywardgrpc.WithLimiter(l)).client)
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: code = %v, want PermissionDenied", k.name, status.Code(err))
		}
	}
	if n := l.calls.Load(); n != 0 {
		t.Errorf("limiter calls = %d, want 0", n)
	}
}

func TestLimiterFailure(t *testing.T) {
	boom := errors.New("redis: connection refused")
	for _, k := range kinds {
		for _, tc := range []struct {
			name string
			opts []keywardgrpc.Option
			code codes.Code
			log  string
		}{
			{"default", nil, codes.OK, "let through"},
			{"LetThrough", []keywardgrpc.Option{keywardgrpc.WithLimiterFailure(limit.LetThrough)}, codes.OK, "let through"},
			{"Refuse", []keywardgrpc.Option{keywardgrpc.WithLimiterFailure(limit.Refuse)}, codes.Unavailable, "get Unavailable"},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				e := newLimitedEnv(t)
				l := &countingLimiter{Limiter: limit.NewMemory()}
				l.fail(boom)
				s := newServer(t, e.keys, append([]keywardgrpc.Option{scoped(), keywardgrpc.WithLimiter(l)}, tc.opts...)...)
				for i := range 4 { // over the rate limit, were it enforced
					_, err := k.call(authorized(withTimeout(t), "Bearer "+e.rate.Raw), s.client)
					if status.Code(err) != tc.code {
						t.Fatalf("call %d: code = %v (%v), want %v", i+1, status.Code(err), err, tc.code)
					}
					if err != nil {
						if strings.Contains(err.Error(), boom.Error()) {
							t.Errorf("the error %q holds the limiter's error", err)
						}
						var retry *errdetails.RetryInfo
						for _, d := range status.Convert(err).Details() {
							if r, ok := d.(*errdetails.RetryInfo); ok {
								retry = r
							}
						}
						if retry == nil || retry.GetRetryDelay().AsDuration() != 5*time.Second {
							t.Errorf("RetryInfo = %v, want 5s", retry)
						}
					}
				}
				log := e.log.String()
				if n := strings.Count(log, "the rate limiter is unavailable"); n != 1 {
					t.Errorf("outage logged %d times, want once:\n%s", n, log)
				}
				if !strings.Contains(log, tc.log) || !strings.Contains(log, boom.Error()) {
					t.Errorf("log lacks %q or the error:\n%s", tc.log, log)
				}
				// The limiter answers again: the recovery is logged, and
				// limits are enforced (the failed calls counted nothing).
				l.err.Store(nil)
				for i := range 2 {
					if _, err := k.call(authorized(withTimeout(t), "Bearer "+e.rate.Raw), s.client); err != nil {
						t.Fatalf("after recovery, call %d: %v", i+1, err)
					}
				}
				_, err := k.call(authorized(withTimeout(t), "Bearer "+e.rate.Raw), s.client)
				exhausted(t, err, 30*time.Second, "rate")
				if !strings.Contains(e.log.String(), "the rate limiter answers again") {
					t.Errorf("recovery not logged:\n%s", e.log)
				}
			})
		}
	}
}

// TestNoLimiterWarnsOnce checks that without a limiter, limited keys pass
// and one warning says their limits are not enforced.
func TestNoLimiterWarnsOnce(t *testing.T) {
	e := newLimitedEnv(t)
	s := newServer(t, e.keys, scoped())
	for _, k := range kinds {
		for i := range 3 {
			if _, err := k.call(authorized(withTimeout(t), "Bearer "+e.rate.Raw), s.client); err != nil {
				t.Fatalf("%s call %d: %v", k.name, i+1, err)
			}
		}
	}
	// One interceptor of each kind: one warning each at most.
	if n := strings.Count(e.log.String(), "not enforced"); n != 2 {
		t.Errorf("warnings = %d, want 2 (one per interceptor):\n%s", n, e.log)
	}
}

func TestInsufficientScopeDetails(t *testing.T) {
	e := newLimitedEnv(t)
	s := newServer(t, e.keys, keywardgrpc.WithMethodScopes(map[string][]scope.Scope{
		methodCheck: {scope.SessionsRead, scope.SessionsWrite},
		methodWatch: {scope.SessionsRead, scope.SessionsWrite},
	}))
	for _, k := range kinds {
		_, err := k.call(authorized(withTimeout(t), "Bearer "+e.plain.Raw), s.client)
		st := status.Convert(err)
		if st.Code() != codes.PermissionDenied {
			t.Fatalf("%s: code = %v, want PermissionDenied", k.name, st.Code())
		}
		var info *errdetails.ErrorInfo
		for _, d := range st.Details() {
			if i, ok := d.(*errdetails.ErrorInfo); ok {
				info = i
			}
		}
		want := string(scope.SessionsRead) + " " + string(scope.SessionsWrite)
		if info == nil || info.GetReason() != "INSUFFICIENT_SCOPE" || info.GetDomain() != "keyward" ||
			info.GetMetadata()["required_scopes"] != want {
			t.Errorf("%s: ErrorInfo = %v, want INSUFFICIENT_SCOPE, keyward, required_scopes %q", k.name, info, want)
		}
	}
}

func TestLimiterOptionsPanic(t *testing.T) {
	keys := keywardtest.NewKeys(t)
	for _, tc := range []struct {
		name string
		opts []keywardgrpc.Option
	}{
		{"nil limiter", []keywardgrpc.Option{keywardgrpc.WithLimiter(nil)}},
		{"invalid failure", []keywardgrpc.Option{keywardgrpc.WithLimiter(limit.NewMemory()), keywardgrpc.WithLimiterFailure(0)}},
		{"failure without limiter", []keywardgrpc.Option{keywardgrpc.WithLimiterFailure(limit.Refuse)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			keywardgrpc.UnaryServerInterceptor(keys, tc.opts...)
		})
	}
}
