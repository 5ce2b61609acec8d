package faults

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/syncbuf"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/postgres"
)

// The suite's settings. Deadlines are small to keep it fast; the bounds it
// asserts are generous, so that it holds on a loaded CI machine: outcomes
// are decided by events (a request's status, a streak of successes), and
// times are only measured against wide bounds.
const (
	lookupTimeout = 300 * time.Millisecond // keyward.WithLookupTimeout
	storeTimeout  = time.Second            // keyward.WithStoreTimeout: each write of last-used times
	flushInterval = 250 * time.Millisecond // keyward.WithFlushInterval
	cacheBound    = 500 * time.Millisecond // cache.WithBound

	// late503 is how long after the lookup deadline an answer may come,
	// in the server: the wait for a place among the lookups in flight, and
	// the time to write the response. On a machine so loaded that the
	// process itself was not run for a while, the stalls measured by a
	// lagMonitor are allowed on top.
	late503 = 500 * time.Millisecond

	faultHold    = 2 * time.Second        // how long each fault lasts
	addedLatency = 400 * time.Millisecond // per chunk, each way: a round trip is 2.7 × the lookup timeout

	loaders        = 8                     // concurrent clients per configuration
	pace           = 10 * time.Millisecond // each client's pause between requests
	beforeRequests = 300                   // requests before the fault, at least
	recoveryStreak = 100                   // consecutive 200s for valid keys: healthy, before the fault and after
	recoveryBound  = 5 * time.Second       // the longest recovery accepted
	eventWait      = 15 * time.Second      // the longest wait for any event
	clientTimeout  = 5 * time.Second       // a request slower than this has hung

	// Last-used times are kept to the millisecond (a use less than 1 ms
	// after the recorded one is not recorded; see keyward.Keys.Flush), by
	// the lifecycle's clock, which follows time.Now within a fraction of a
	// millisecond.
	usePrecision   = time.Millisecond
	clockTolerance = time.Millisecond
)

// Headers of the suite's requests and responses: the request's ID, and
// the middleware's error.
const (
	idHeader  = "X-Fault-Suite-Request"
	whyHeader = "X-Fault-Suite-Error"
)

// owner is the account of the suite's keys.
const owner = "acct_faults"

// A fault is injected, held for faultHold, then healed.
type fault struct {
	name string
	// inject puts the fault in place and returns when it is: every store
	// query begun afterwards meets it. heal ends it and returns when the
	// store is reachable again.
	inject func(t *testing.T, s *suite) (heal func(t *testing.T))
}

var faultList = []fault{
	{"table locked", func(t *testing.T, s *suite) func(*testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), eventWait)
		defer cancel()
		// Not ctx: database/sql rolls a transaction back when its context ends.
		tx, err := s.admin.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		// A migration, a VACUUM FULL: every query on the table waits.
		if _, err := tx.ExecContext(ctx, "LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE"); err != nil {
			tx.Rollback()
			t.Fatal(err)
		}
		return func(t *testing.T) {
			// Queries abandoned at their deadline must not pile up on the
			// lock, holding connections: pgx closes the connection and
			// sends the server a cancel request. Report what is left.
			var waiting int
			ctx, cancel := context.WithTimeout(context.Background(), eventWait)
			defer cancel()
			if err := s.admin.QueryRowContext(ctx,
				"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").Scan(&waiting); err == nil {
				s.note("table locked: %d backends were waiting on the lock when it was released", waiting)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		}
	}},
	{fmt.Sprintf("latency %v", addedLatency), func(t *testing.T, s *suite) func(*testing.T) {
		s.proxy.Set(Latency, addedLatency)
		return func(*testing.T) { s.proxy.Set(Pass, 0) }
	}},
	{"blackhole", func(t *testing.T, s *suite) func(*testing.T) {
		s.proxy.Set(Blackhole, 0)
		return func(*testing.T) { s.proxy.Set(Pass, 0) }
	}},
	{"connection reset", func(t *testing.T, s *suite) func(*testing.T) {
		s.proxy.Set(Reset, 0)
		return func(*testing.T) { s.proxy.Set(Pass, 0) }
	}},
	{"server stop/start", func(t *testing.T, s *suite) func(*testing.T) {
		if err := s.server.Stop(); err != nil {
			t.Fatal(err)
		}
		return func(t *testing.T) {
			if err := s.server.Start(); err != nil {
				t.Fatal(err)
			}
		}
	}},
}

// A configuration is what the middleware verifies keys against.
type configuration struct {
	name string
	// bound is how long after a fault begins answers from memory may still
	// be served: none for the store alone, the cache's bound with it.
	bound time.Duration
	// wrap returns the store the lifecycle uses, and what stops it.
	wrap func(pg *postgres.Store, logger *slog.Logger) (store.Store, func(), error)
}

var configurations = []configuration{
	{"postgres", 0, func(pg *postgres.Store, _ *slog.Logger) (store.Store, func(), error) {
		return pg, func() {}, nil
	}},
	{"postgres+cache", cacheBound, func(pg *postgres.Store, logger *slog.Logger) (store.Store, func(), error) {
		c, err := cache.New(pg, cache.WithBound(cacheBound), cache.WithLogger(logger))
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Close() }, nil
	}},
}

// suite is what every fault shares: the server, the proxy in front of it,
// and a direct connection for setting up, injecting faults and checking.
type suite struct {
	server *pgtest.Server
	proxy  *Proxy
	admin  *sql.DB         // direct to the server
	stored *postgres.Store // on admin: reads stored last-used times
	issuer *keyward.Keys   // on stored: creates and revokes keys

	mu    sync.Mutex
	notes []string
}

func (s *suite) note(format string, args ...any) {
	s.mu.Lock()
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// TestFaults is the fault suite: for each fault and configuration, a
// bounded load of valid, revoked and unknown keys through
// middleware.Authenticate, before, during and after the fault. It prints
// one row per fault and configuration (go test -v); with the environment
// variable KEYWARD_FAULTS_TABLE set to a path, it also writes the table
// there.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault suite takes about 20 s; it runs without -short")
	}
	start := time.Now()
	s := &suite{server: pgtest.NewServer(t)}
	var err error
	if s.proxy, err = NewProxy("unix", s.server.Socket()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.proxy.Close() })
	if s.admin, err = sql.Open("pgx", s.server.DSN()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	if err := postgres.Migrate(ctx, s.admin); err != nil {
		t.Fatal(err)
	}
	if s.stored, err = postgres.New(s.admin); err != nil {
		t.Fatal(err)
	}
	if s.issuer, err = keyward.New(s.stored, keyward.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.issuer.Close() })

	var rows []row
	for _, f := range faultList {
		t.Run(strings.NewReplacer(" ", "_", "/", "-").Replace(f.name), func(t *testing.T) {
			rows = append(rows, s.runFault(t, f)...)
		})
	}

	table := formatTable(rows)
	t.Logf("fault suite: lookup timeout %v, cache bound %v, faults held %v, %d clients per configuration; %v in all\n%s",
		lookupTimeout, cacheBound, faultHold, loaders, time.Since(start).Round(100*time.Millisecond), table)
	for _, n := range s.notes {
		t.Log(n)
	}
	if path := os.Getenv("KEYWARD_FAULTS_TABLE"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// runFault runs every configuration through one fault at once, and
// checks each.
func (s *suite) runFault(t *testing.T, f fault) []row {
	before := s.proxy.Stats()
	lags := startLagMonitor()
	defer lags.stop()
	runs := make([]*run, len(configurations))
	for i, c := range configurations {
		runs[i] = s.newRun(t, f.name, c)
	}
	for _, r := range runs {
		r.startLoad()
	}
	stopped := false
	stopLoad := func() {
		if stopped {
			return
		}
		stopped = true
		for _, r := range runs {
			r.stopLoad(t)
		}
	}
	defer stopLoad() // also when the test fails early

	for _, r := range runs {
		if !wait(r.beforeDone, eventWait) {
			t.Fatalf("%s: not healthy before the fault: no %d requests ending with %d 200s in a row for valid keys within %v", r.config, beforeRequests, recoveryStreak, eventWait)
		}
	}
	var tl timeline
	tl.injectBegin = time.Now()
	heal := f.inject(t, s)
	tl.injectAt = time.Now()
	healed := false
	defer func() { // also when the test fails early: later faults need the store
		if !healed {
			heal(t)
		}
	}()
	time.Sleep(faultHold) // the fault's duration
	tl.healBegin = time.Now()
	heal(t)
	healed = true
	tl.healAt = time.Now()
	for _, r := range runs {
		r.healed(tl)
	}
	deadline := time.Now().Add(eventWait)
	for _, r := range runs {
		// Recovery is an event: a streak of successes for valid keys.
		if !wait(r.recovered, time.Until(deadline)) {
			r.addFailure("no recovery: valid keys did not get %d 200s in a row within %v after the fault ended", recoveryStreak, eventWait)
		}
	}
	stopLoad()

	rows := make([]row, len(runs))
	for i, r := range runs {
		rows[i] = r.finish(t, s, lags)
	}
	after := s.proxy.Stats()
	s.note("%s: the database connections of both configurations: %d opened, %d reset by the proxy",
		f.name, after.Accepted-before.Accepted, after.Reset-before.Reset)
	return rows
}

// A lagMonitor measures how late the process runs a goroutine that sleeps
// a few milliseconds at a time: on a loaded machine (a CI runner, the race
// detector, other packages' tests in parallel) the process may not run at
// all for hundreds of milliseconds, and no deadline can be kept during
// such a stall. The suite allows a late answer the stalls that overlapped
// it, no more: a hang outlasts them.
type lagMonitor struct {
	mu      sync.Mutex
	samples []lagSample
	done    chan struct{}
	stopped chan struct{}
}

// A lagSample is a wake-up that came lag after it was due: the process
// was stalled from at-lag to at.
type lagSample struct {
	at  time.Time
	lag time.Duration
}

// lagTick is the monitor's sleep; lags below lagFloor are not kept.
const (
	lagTick  = 5 * time.Millisecond
	lagFloor = 20 * time.Millisecond
)

func startLagMonitor() *lagMonitor {
	m := &lagMonitor{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(m.stopped)
		t := time.NewTimer(lagTick)
		defer t.Stop()
		for {
			due := time.Now().Add(lagTick)
			t.Reset(lagTick)
			select {
			case <-m.done:
				return
			case <-t.C:
			}
			if now := time.Now(); now.Sub(due) >= lagFloor {
				m.mu.Lock()
				m.samples = append(m.samples, lagSample{at: now, lag: now.Sub(due)})
				m.mu.Unlock()
			}
		}
	}()
	return m
}

// stop stops the monitor; its samples stay readable.
func (m *lagMonitor) stop() {
	select {
	case <-m.done:
	default:
		close(m.done)
		<-m.stopped
	}
}

// stalled returns the sum of the stalls that overlapped [from, to].
func (m *lagMonitor) stalled(from, to time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var sum time.Duration
	for _, s := range m.samples {
		if s.at.After(from) && s.at.Add(-s.lag).Before(to) {
			sum += s.lag
		}
	}
	return sum
}

// A timeline is when a fault began and ended.
type timeline struct {
	injectBegin time.Time // the fault is being put in place
	injectAt    time.Time // it is: nothing reaches the store
	healBegin   time.Time // it begins to heal
	healAt      time.Time // it has ended: the store can be reached
}

// phase says when a request was made: 0 before the fault (answered before
// it began), 1 during it (in flight at some time between its injection and
// its end), 2 after it (sent after its end).
func (tl timeline) phase(res result) int {
	switch {
	case res.start.Add(res.took).Before(tl.injectBegin):
		return 0
	case res.start.Before(tl.healAt):
		return 1
	}
	return 2
}

// wait reports whether ch is closed within d.
func wait(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// A kind of key.
type kind int

const (
	valid kind = iota
	revoked
	unknown
)

func (k kind) String() string { return [...]string{"valid", "revoked", "unknown"}[k] }

// A result is one request's outcome.
type result struct {
	kind   kind
	key    int // index of a valid key
	status int // 0 if the request failed
	err    error
	id     string        // the request's ID
	served time.Duration // the server's time to answer, set by finish
	why    string        // the middleware's error, for a refusal
	start  time.Time
	took   time.Duration
}

// A run is one configuration under one fault: its own lifecycle, store,
// connection pool (through the proxy), HTTP server and keys.
type run struct {
	fault, config string
	bound         time.Duration

	db         *sql.DB
	keys       *keyward.Keys
	closeStore func()
	server     *httptest.Server
	client     *http.Client
	logs       *logBuffer

	valid    []apikey.Secret
	validIDs []uuid.UUID
	revoked  []apikey.Secret
	unknown  []apikey.Secret // well-formed, never stored

	closeOnce sync.Once
	closeErr  error

	stop    chan struct{}
	loading sync.WaitGroup
	results [][]result // per client
	ids     atomic.Int64
	served  sync.Map // request ID to the time the server took to answer
	probe   []result // the probe's, after the fault

	mu          sync.Mutex
	completed   int
	healthy     bool          // seen healthy before the fault
	beforeDone  chan struct{} // closed when healthy
	tl          timeline      // healAt is zero until the fault ends
	firstOK     time.Time     // the end of the first 200 for a valid key sent after the fault
	streak      int           // consecutive 200s for valid keys sent after the fault
	streakStart time.Time     // when the streak's first request was sent
	recovered   chan struct{}
	stable      time.Duration // from the fault's end to the streak's start
	failures    []string
}

// newRun sets up a configuration for a fault: fresh keys, a pool through
// the proxy, the lifecycle, the middleware in an HTTP server.
func (s *suite) newRun(t *testing.T, faultName string, c configuration) *run {
	t.Helper()
	r := &run{
		fault:      faultName,
		config:     c.name,
		bound:      c.bound,
		logs:       new(logBuffer),
		stop:       make(chan struct{}),
		results:    make([][]result, loaders),
		beforeDone: make(chan struct{}),
		recovered:  make(chan struct{}),
	}
	t.Cleanup(func() { r.close() }) // after finish, does nothing more
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	acct := s.issuer.Owner(owner)
	params := keyward.CreateParams{Name: "Fault suite", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite)}
	for range 3 {
		sec, rec, err := acct.Create(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		r.valid, r.validIDs = append(r.valid, sec), append(r.validIDs, rec.ID)
	}
	for range 2 {
		sec, rec, err := acct.Create(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := acct.Revoke(ctx, rec.ID, keyward.RevokeParams{}); err != nil {
			t.Fatal(err)
		}
		r.revoked = append(r.revoked, sec)
	}
	for range 2 {
		sec, err := apikey.Generate(apikey.Live)
		if err != nil {
			t.Fatal(err)
		}
		r.unknown = append(r.unknown, sec)
	}

	var err error
	dsn := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", s.proxy.Host(), s.proxy.Port())
	if r.db, err = sql.Open("pgx", dsn); err != nil {
		t.Fatal(err)
	}
	r.db.SetMaxOpenConns(16)
	r.db.SetMaxIdleConns(16)
	pg, err := postgres.New(r.db)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(r.logs, nil))
	st, closeStore, err := c.wrap(pg, logger)
	if err != nil {
		t.Fatal(err)
	}
	r.closeStore = closeStore
	r.keys, err = keyward.New(st,
		keyward.WithLookupTimeout(lookupTimeout),
		keyward.WithStoreTimeout(storeTimeout),
		keyward.WithFlushInterval(flushInterval),
		keyward.WithLogger(logger),
	)
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	// The error of each refusal goes back in a header, for the report.
	why := middleware.WithErrorHandler(func(w http.ResponseWriter, req *http.Request, err error) {
		w.Header().Set(whyHeader, strings.Map(func(r rune) rune {
			if r < ' ' || r > '~' {
				return ' '
			}
			return r
		}, err.Error()))
		middleware.WriteError(w, req, err)
	})
	// Each answer's time is measured in the server too, from the request's
	// arrival to the handler's return: what the lookup deadline bounds,
	// without the client's share of a loaded machine.
	auth := middleware.Authenticate(r.keys, why)(ok)
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		auth.ServeHTTP(w, req)
		r.served.Store(req.Header.Get(idHeader), time.Since(start))
	}))
	r.client = &http.Client{
		Timeout:   clientTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: loaders},
	}
	return r
}

// startLoad starts the clients. Each sends, one at a time with a pause
// between them, valid keys (half the requests), revoked keys, unknown keys
// it repeats, and unknown keys never seen before.
func (r *run) startLoad() {
	for g := range loaders {
		r.loading.Add(1)
		go func() {
			defer r.loading.Done()
			pause := time.NewTimer(0)
			defer pause.Stop()
			for i := g; ; i++ {
				select {
				case <-r.stop:
					return
				case <-pause.C:
				}
				res := result{key: -1}
				var raw string
				switch i % 6 {
				case 0, 1, 2:
					res.kind, res.key = valid, i%len(r.valid)
					raw = r.valid[res.key].Reveal()
				case 3:
					res.kind, raw = revoked, r.revoked[i/6%len(r.revoked)].Reveal()
				case 4:
					res.kind, raw = unknown, r.unknown[i/6%len(r.unknown)].Reveal()
				default:
					sec, err := apikey.Generate(apikey.Live)
					if err != nil {
						panic(err)
					}
					res.kind, raw = unknown, sec.Reveal()
				}
				r.do(&res, raw)
				r.results[g] = append(r.results[g], res)
				r.record(res)
				pause.Reset(pace)
			}
		}()
	}
}

// do sends one request and measures it.
func (r *run) do(res *result, raw string) {
	req, err := http.NewRequest("GET", r.server.URL+"/", nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	res.id = strconv.FormatInt(r.ids.Add(1), 10)
	req.Header.Set(idHeader, res.id)
	res.start = time.Now()
	resp, err := r.client.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res.status = resp.StatusCode
		res.why = resp.Header.Get(whyHeader)
	}
	res.took = time.Since(res.start)
	res.err = err
}

// record counts a result towards the events the suite waits for.
func (r *run) record(res result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.completed++
	if !r.healthy {
		// Before the fault: it is injected once the service is seen
		// healthy, after at least beforeRequests requests.
		switch {
		case res.kind != valid:
		case res.status == http.StatusOK:
			r.streak++
		default:
			r.streak = 0
		}
		if r.completed >= beforeRequests && r.streak >= recoveryStreak {
			r.healthy, r.streak = true, 0
			close(r.beforeDone)
		}
		return
	}
	if r.tl.healAt.IsZero() || res.kind != valid || res.start.Before(r.tl.healAt) || r.streak >= recoveryStreak {
		return
	}
	if res.status != http.StatusOK {
		r.streak = 0
		return
	}
	if end := res.start.Add(res.took); r.firstOK.IsZero() || end.Before(r.firstOK) {
		r.firstOK = end
	}
	if r.streak == 0 {
		r.streakStart = res.start
	}
	r.streak++
	if r.streak == recoveryStreak {
		r.stable = r.streakStart.Sub(r.tl.healAt)
		close(r.recovered)
	}
}

// healed records the fault's timeline, and starts a probe: one more
// client, that sends valid keys one after the other from the fault's end
// until the recovery, so that the first request after the fault is not
// held up behind the load's requests in flight.
func (r *run) healed(tl timeline) {
	r.mu.Lock()
	r.tl = tl
	r.mu.Unlock()
	r.loading.Add(1)
	go func() {
		defer r.loading.Done()
		for i := 0; ; i++ {
			select {
			case <-r.stop:
				return
			case <-r.recovered:
				return
			default:
			}
			res := result{kind: valid, key: i % len(r.valid)}
			r.do(&res, r.valid[res.key].Reveal())
			r.probe = append(r.probe, res)
			r.record(res)
			time.Sleep(time.Millisecond)
		}
	}()
}

// stopLoad stops the clients and waits for them: each request ends within
// the client's timeout.
func (r *run) stopLoad(t *testing.T) {
	select {
	case <-r.stop:
		return
	default:
	}
	close(r.stop)
	done := make(chan struct{})
	go func() { r.loading.Wait(); close(done) }()
	if !wait(done, 2*clientTimeout) {
		t.Fatalf("%s: the clients did not stop within %v", r.config, 2*clientTimeout)
	}
}

// A row is one line of the table.
type row struct {
	fault, config         string
	requests, ok, refused int
	unavailable           [3]int        // 503s before, during, after the fault
	slowest, max503       time.Duration // the slowest answer, the slowest 503, in the server
	recovery              time.Duration // to the first 200 for a valid key
	stable                time.Duration // to the streak of 200s
	recovered             bool
	lastUsed              string
	failed                bool
}

// finish closes the run, checks its results and returns its row.
func (r *run) finish(t *testing.T, s *suite, lags *lagMonitor) row {
	errClose := r.close()

	all := slices.Concat(append(r.results, r.probe)...)
	for i := range all {
		if d, ok := r.served.Load(all[i].id); ok {
			all[i].served = d.(time.Duration)
		}
	}
	rw := row{fault: r.fault, config: r.config, requests: len(all)}
	r.mu.Lock()
	tl := r.tl
	fail := func(format string, args ...any) { r.failures = append(r.failures, fmt.Sprintf(format, args...)) }
	var (
		bad         = map[string]int{}
		example     = map[string]string{}
		during503   int
		excused     int           // late answers explained by stalls of the process
		excusedLag  time.Duration // the longest such stall
		excusedLate time.Duration // the latest such answer
		stray503    string
		lastStart   = make([]time.Time, len(r.valid))
		lastEnd     = make([]time.Time, len(r.valid))
		closedFrom  = tl.injectAt.Add(r.bound + 50*time.Millisecond)
	)
	problem := func(what string, res result) {
		bad[what]++
		if _, ok := example[what]; !ok {
			example[what] = fmt.Sprintf("a %s key sent at %+.3fs from the fault's start (it ended at %+.3fs), answered in %v (%v in the server): status %d, %v %s",
				res.kind, res.start.Sub(tl.injectAt).Seconds(), tl.healAt.Sub(tl.injectAt).Seconds(), res.took.Round(time.Millisecond), res.served.Round(time.Millisecond), res.status, res.err, res.why)
		}
	}
	for _, res := range all {
		p := tl.phase(res)
		switch res.status {
		case http.StatusOK:
			rw.ok++
		case http.StatusUnauthorized:
			rw.refused++
		case http.StatusServiceUnavailable:
			rw.unavailable[p]++
			if p != 1 && stray503 == "" {
				stray503 = fmt.Sprintf("%s, %s: a 503 outside the fault, for a %s key sent at %+.3fs from the fault's start (it ended at %+.3fs): %s",
					r.fault, r.config, res.kind, res.start.Sub(tl.injectAt).Seconds(), tl.healAt.Sub(tl.injectAt).Seconds(), res.why)
			}
			rw.max503 = max(rw.max503, res.served)
			if p == 1 {
				during503++
			}
		}
		rw.slowest = max(rw.slowest, res.served)
		if res.served > lookupTimeout+late503 {
			// A hang: whatever the answer, no request waits for the store
			// longer than the lookup deadline, unless the process itself
			// was stalled meanwhile.
			if lag := lags.stalled(res.start, res.start.Add(res.took)); res.served > lookupTimeout+late503+lag {
				problem(fmt.Sprintf("answered later than the lookup timeout + %v (+ the process's stalls meanwhile, %v)", late503, lag.Round(time.Millisecond)), res)
			} else {
				excused++
				excusedLag = max(excusedLag, lag)
				excusedLate = max(excusedLate, res.served)
			}
		}
		switch {
		case res.err != nil || res.status == 0:
			problem("request failed (hung past the client's timeout?)", res)
		case res.kind == valid && res.status == http.StatusUnauthorized:
			problem("401 for a valid key", res)
		case res.kind != valid && res.status >= 200 && res.status < 300:
			problem(fmt.Sprintf("%d for a %s key", res.status, res.kind), res)
		case res.status != http.StatusOK && res.status != http.StatusUnauthorized && res.status != http.StatusServiceUnavailable:
			problem(fmt.Sprintf("status %d", res.status), res)
		}
		if res.status == http.StatusOK && !res.start.Before(closedFrom) && res.start.Add(res.took).Before(tl.healBegin) {
			// Begun after the bound and answered before the fault began
			// to heal, when nothing could reach the store: a 200 can only
			// come from memory kept past its bound.
			problem(fmt.Sprintf("200 during the fault, more than %v after it began", r.bound), res)
		}
		if res.kind == valid && res.status == http.StatusOK {
			if res.start.After(lastStart[res.key]) {
				lastStart[res.key] = res.start
			}
			if end := res.start.Add(res.took); end.After(lastEnd[res.key]) {
				lastEnd[res.key] = end
			}
		}
	}
	for _, what := range slices.Sorted(maps.Keys(bad)) {
		fail("%d × %s; the first: %s", bad[what], what, example[what])
	}
	if stray503 != "" {
		s.note("%s", stray503)
	}
	if excused > 0 {
		s.note("%s, %s: %d answers came later than the lookup timeout + %v (the latest after %v) while the process was stalled for up to %v (a loaded machine): not counted as hangs",
			r.fault, r.config, excused, late503, excusedLate.Round(time.Millisecond), excusedLag.Round(time.Millisecond))
	}
	if during503 == 0 {
		fail("no 503 during the fault: was it injected?")
	}
	select {
	case <-r.recovered:
		rw.recovered, rw.recovery, rw.stable = true, r.firstOK.Sub(tl.healAt), r.stable
		if r.stable > recoveryBound {
			fail("recovered %v after the fault ended, want within %v", r.stable.Round(time.Millisecond), recoveryBound)
		}
	default:
	}
	r.mu.Unlock()

	// No last-used time lost: after Close, each valid key's stored time is
	// at least that of its last successful request.
	lost := 0
	if errClose != nil {
		r.addFailure("Close = %v: last-used times not written", errClose)
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	for i, id := range r.validIDs {
		if lastStart[i].IsZero() {
			r.addFailure("valid key %d never succeeded", i)
			continue
		}
		rec, err := s.stored.Get(ctx, owner, id)
		if err != nil {
			r.addFailure("reading valid key %d: %v", i, err)
			continue
		}
		got := rec.LastUsedAt
		lo := lastStart[i].Truncate(time.Microsecond).Add(-usePrecision - clockTolerance)
		hi := lastEnd[i].Add(clockTolerance + time.Microsecond)
		switch {
		case got.Before(lo):
			lost++
			r.addFailure("valid key %d: stored last use %v is %v before its last successful request (%v)",
				i, got.Format(time.RFC3339Nano), lastStart[i].Sub(got), lastStart[i].UTC().Format(time.RFC3339Nano))
		case got.After(hi):
			r.addFailure("valid key %d: stored last use %v is after its last successful request ended (%v)",
				i, got.Format(time.RFC3339Nano), lastEnd[i].UTC().Format(time.RFC3339Nano))
		}
	}
	if lost == 0 {
		rw.lastUsed = fmt.Sprintf("ok (%d keys)", len(r.validIDs))
	} else {
		rw.lastUsed = fmt.Sprintf("LOST (%d of %d keys)", lost, len(r.validIDs))
	}

	r.mu.Lock()
	failures := r.failures
	r.mu.Unlock()
	if len(failures) > 0 {
		rw.failed = true
		t.Errorf("%s, %s:\n  %s\nlog:\n%s", r.fault, r.config, strings.Join(failures, "\n  "), r.logs.tail(40))
	}
	return rw
}

// close stops the HTTP server, closes the lifecycle (writing the last
// uses), the cache and the pool, once, and returns the lifecycle's Close
// error.
func (r *run) close() error {
	r.closeOnce.Do(func() {
		if r.server != nil {
			r.server.Close()
			r.client.CloseIdleConnections()
		}
		if r.keys != nil {
			done := make(chan error, 1)
			go func() { done <- r.keys.Close() }()
			select {
			case r.closeErr = <-done:
			case <-time.After(eventWait):
				r.closeErr = fmt.Errorf("Close did not return within %v", eventWait)
			}
		}
		if r.closeStore != nil {
			r.closeStore()
		}
		if r.db != nil {
			r.db.Close()
		}
	})
	return r.closeErr
}

func (r *run) addFailure(format string, args ...any) {
	r.mu.Lock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// formatTable renders rows as a Markdown table.
func formatTable(rows []row) string {
	var b strings.Builder
	b.WriteString("| Fault | Configuration | Requests | 200 | 401 | 503 (before / during / after) | Slowest answer (503) in the server | Recovery (stable) | Last-used times |\n")
	b.WriteString("|-------|---------------|---------:|----:|----:|:-----------------------------:|-----------------------------------:|------------------:|-----------------|\n")
	for _, r := range rows {
		recovery := "none"
		if r.recovered {
			recovery = fmt.Sprintf("%v (%v)", r.recovery.Round(time.Millisecond), r.stable.Round(time.Millisecond))
		}
		slowest := r.slowest.Round(time.Millisecond).String()
		if r.max503 > 0 {
			slowest += " (" + r.max503.Round(time.Millisecond).String() + ")"
		}
		fault := r.fault
		if r.failed {
			fault += " (FAILED)"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d / %d / %d | %s | %s | %s |\n",
			fault, r.config, r.requests, r.ok, r.refused,
			r.unavailable[0], r.unavailable[1], r.unavailable[2], slowest, recovery, r.lastUsed)
	}
	return b.String()
}

// logBuffer collects a run's log lines, shown when it fails.
type logBuffer struct{ syncbuf.Buffer }

// tail returns the last n lines.
func (l *logBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
