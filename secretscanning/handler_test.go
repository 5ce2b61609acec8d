package secretscanning_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/secretscanning"
)

// Tokens of the tests: two keys of the store and two strangers.
const (
	liveKey  = "ck_live_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh"
	testKey  = "ck_test_Zq81LmNoPqRsTuVwXyZ0123456789abc"
	stranger = "ck_live_00000000000000000000000000000000"
	noise    = "not_a_key_at_all"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestAlert(t *testing.T) {
	gh := newSigner(t, "key-1")
	rep := newFakeReporter(liveKey, testKey)
	h, logs := newHandler(t, rep, []signer{gh})

	body := `[
		{"token":"` + liveKey + `","type":"keyward_api_key","url":"https://github.com/octo/a/blob/1/.env","source":"content"},
		{"token":"` + stranger + `","type":"keyward_api_key","url":"https://github.com/octo/b/blob/2/x.go","source":"commit"},
		{"token":"` + testKey + `","type":"keyward_api_key","url":"","source":"issue_comment"},
		{"token":"` + liveKey + `","type":"keyward_api_key","url":"https://gist.github.com/octo/3","source":"gist_content"},
		{"token":"` + noise + `","type":"keyward_api_key","source":"npm","extra":{"added":"later"}},
		{"token":"` + liveKey + `","type":"other_type","url":"https://github.com/octo/c","source":"content"}
	]`
	rec := serve(h, gh.request(t, body))

	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", rec.Code, rec.Body)
	}
	for name, want := range map[string]string{
		"Content-Type":           "application/json",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := rec.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	var got []secretscanning.Feedback
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decoding the feedback: %v", err)
	}
	want := []secretscanning.Feedback{
		{TokenHash: sha(liveKey), TokenType: "keyward_api_key", Label: "true_positive"},
		{TokenHash: sha(stranger), TokenType: "keyward_api_key", Label: "false_positive"},
		{TokenHash: sha(testKey), TokenType: "keyward_api_key", Label: "true_positive"},
		{TokenHash: sha(noise), TokenType: "keyward_api_key", Label: "false_positive"},
		{TokenHash: sha(liveKey), TokenType: "other_type", Label: "true_positive"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("feedback\n%+v\nwant\n%+v", got, want)
	}

	// Each distinct token is reported once, with its first match's URL.
	wantReports := []report{
		{liveKey, keyward.Exposure{Source: "github", URL: "https://github.com/octo/a/blob/1/.env"}},
		{stranger, keyward.Exposure{Source: "github", URL: "https://github.com/octo/b/blob/2/x.go"}},
		{testKey, keyward.Exposure{Source: "github", URL: ""}},
		{noise, keyward.Exposure{Source: "github", URL: ""}},
	}
	if got := rep.reports(); !reflect.DeepEqual(got, wantReports) {
		t.Errorf("reports\n%+v\nwant\n%+v", got, wantReports)
	}
	checkNoToken(t, rec, logs, liveKey, testKey, stranger, noise)
	if !strings.Contains(logs.String(), sha(liveKey)[:12]) {
		t.Errorf("the log does not name the exposed key by its hash prefix:\n%s", logs)
	}

	// GitHub sends the alert again: the same answer, nothing new exposed.
	again := serve(h, gh.request(t, body))
	var gotAgain []secretscanning.Feedback
	if err := json.Unmarshal(again.Body.Bytes(), &gotAgain); err != nil || !reflect.DeepEqual(gotAgain, want) {
		t.Errorf("repeated alert: %d %s (%v), want the same feedback", again.Code, again.Body, err)
	}
}

func TestGitHubSample(t *testing.T) {
	// The sample request of GitHub's partner program documentation, signed
	// by the key GitHub published as bcb53661…: the handler must accept
	// GitHub's own bytes, signature encoding and key format.
	keys, err := secretscanning.ParsePublicKeys([]byte(githubKeysDocument))
	if err != nil {
		t.Fatal(err)
	}
	rep := newFakeReporter()
	h, err := secretscanning.NewHandler(rep,
		secretscanning.WithKeySource(secretscanning.StaticKeys(keys...)),
		secretscanning.WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(githubSamplePayload))
	r.Header.Set("GITHUB-PUBLIC-KEY-IDENTIFIER", githubSampleKeyID) // header names are case-insensitive
	r.Header.Set("GITHUB-PUBLIC-KEY-SIGNATURE", githubSampleSignature)
	rec := serve(h, r)
	want := `[{"token_hash":"` + sha("some_token") + `","token_type":"some_type","label":"false_positive"}]` + "\n"
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("got %d %s, want 200 %s", rec.Code, rec.Body, want)
	}
	wantReports := []report{{"some_token", keyward.Exposure{Source: "github", URL: "https://example.com/base-repo-url/"}}}
	if got := rep.reports(); !reflect.DeepEqual(got, wantReports) {
		t.Errorf("reports %+v, want %+v", got, wantReports)
	}

	// The same bytes with one changed do not verify.
	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Replace(githubSamplePayload, "some_token", "some_tokeN", 1)))
	r.Header.Set(secretscanning.HeaderKeyID, githubSampleKeyID)
	r.Header.Set(secretscanning.HeaderSignature, githubSampleSignature)
	checkProblem(t, serve(h, r), http.StatusUnauthorized)
}

// TestUnsigned covers every request that does not carry a valid
// signature: each is refused with the same 401 and reports nothing.
func TestUnsigned(t *testing.T) {
	gh := newSigner(t, "key-1")
	other := newSigner(t, "key-2")
	impostor := newSigner(t, "key-1") // another key under a known identifier
	body := `[{"token":"` + liveKey + `","type":"keyward_api_key","url":"","source":"content"}]`

	tests := []struct {
		name  string
		build func() *http.Request
	}{
		{"valid signature of another body", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Set(secretscanning.HeaderSignature, gh.sign(t, []byte(body+" ")))
			return r
		}},
		{"body with one byte changed", func() *http.Request {
			r := gh.request(t, body)
			tampered := []byte(body)
			tampered[len(tampered)-3] ^= 1
			r.Body = io.NopCloser(strings.NewReader(string(tampered)))
			return r
		}},
		{"body with a byte appended", func() *http.Request {
			r := gh.request(t, body)
			r.Body = io.NopCloser(strings.NewReader(body + "\n"))
			r.ContentLength++
			return r
		}},
		{"signed by another key under a known identifier", func() *http.Request { return impostor.request(t, body) }},
		{"signed by a known key under another known identifier", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Set(secretscanning.HeaderKeyID, other.id)
			return r
		}},
		{"unknown key identifier", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Set(secretscanning.HeaderKeyID, "key-3")
			return r
		}},
		{"no headers", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Del(secretscanning.HeaderKeyID)
			r.Header.Del(secretscanning.HeaderSignature)
			return r
		}},
		{"no key identifier", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Del(secretscanning.HeaderKeyID)
			return r
		}},
		{"no signature", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Del(secretscanning.HeaderSignature)
			return r
		}},
		{"empty key identifier", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Set(secretscanning.HeaderKeyID, "")
			return r
		}},
		{"empty signature", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Set(secretscanning.HeaderSignature, "")
			return r
		}},
		{"signature not base64", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Set(secretscanning.HeaderSignature, "MEUCIQ*not-base64*")
			return r
		}},
		{"signature not ASN.1", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Set(secretscanning.HeaderSignature, base64.StdEncoding.EncodeToString([]byte("signed, GitHub")))
			return r
		}},
		{"signature too long", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Set(secretscanning.HeaderSignature, strings.Repeat("A", 400))
			return r
		}},
		{"key identifier too long", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Set(secretscanning.HeaderKeyID, strings.Repeat("f", 300))
			return r
		}},
		{"two signatures", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Add(secretscanning.HeaderSignature, other.sign(t, []byte(body)))
			return r
		}},
		{"two key identifiers", func() *http.Request {
			r := gh.request(t, body)
			r.Header.Add(secretscanning.HeaderKeyID, other.id)
			return r
		}},
	}
	var bodies []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := newFakeReporter(liveKey)
			h, logs := newHandler(t, rep, []signer{gh, other})
			rec := serve(h, tc.build())
			checkProblem(t, rec, http.StatusUnauthorized)
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("a 401 without WWW-Authenticate")
			}
			if calls := rep.reports(); len(calls) != 0 {
				t.Errorf("the reporter was called %d times", len(calls))
			}
			checkNoToken(t, rec, logs, liveKey)
			bodies = append(bodies, rec.Body.String())
		})
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("401 bodies differ, telling which check failed:\n%s\n%s", bodies[0], b)
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	gh := newSigner(t, "key-1")
	body := `[{"token":"` + liveKey + `","type":"keyward_api_key","url":"","source":"content"}]`
	limit := int64(len(body))

	t.Run("at the limit", func(t *testing.T) {
		rep := newFakeReporter(liveKey)
		h, _ := newHandler(t, rep, []signer{gh}, secretscanning.WithMaxBodyBytes(limit))
		if rec := serve(h, gh.request(t, body)); rec.Code != http.StatusOK {
			t.Errorf("status %d, want 200; body %s", rec.Code, rec.Body)
		}
	})
	over := body + " "
	for _, tc := range []struct {
		name          string
		contentLength int64
	}{
		{"declared", int64(len(over))},
		{"undeclared (chunked)", -1},
		{"understated", limit - 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := newFakeReporter(liveKey)
			h, _ := newHandler(t, rep, []signer{gh}, secretscanning.WithMaxBodyBytes(limit))
			r := gh.request(t, over) // validly signed: size alone refuses it
			r.ContentLength = tc.contentLength
			rec := serve(h, r)
			checkProblem(t, rec, http.StatusRequestEntityTooLarge)
			if calls := rep.reports(); len(calls) != 0 {
				t.Errorf("the reporter was called %d times", len(calls))
			}
		})
	}
}

func TestMalformedBody(t *testing.T) {
	gh := newSigner(t, "key-1")
	for _, body := range []string{
		``,
		`not json`,
		`{}`,
		`null`,
		`"` + liveKey + `"`,
		`[1]`,
		`[null]`,
		`[[]]`,
		`[{}]`,
		`[{"type":"keyward_api_key"}]`,
		`[{"token":"","type":"keyward_api_key"}]`,
		`[{"token":"` + liveKey + `"}]`,
		`[{"token":"` + liveKey + `","type":""}]`,
		`[{"token":5,"type":"keyward_api_key"}]`,
		`[{"token":"` + liveKey + `","type":"keyward_api_key","url":7}]`,
		`[{"token":"` + liveKey + `","type":"keyward_api_key"}`,
		`[{"token":"` + liveKey + `","type":"keyward_api_key"},]`,
		`[{"token":"` + liveKey + `","type":"keyward_api_key"}] []`,
		`[{"token":"` + liveKey + `","type":"keyward_api_key"}]]`,
		`[{"token":"` + stranger + `","type":"keyward_api_key"}, {"token":"` + liveKey + `"}]`,
	} {
		t.Run(body, func(t *testing.T) {
			rep := newFakeReporter(liveKey)
			h, logs := newHandler(t, rep, []signer{gh})
			rec := serve(h, gh.request(t, body))
			checkProblem(t, rec, http.StatusBadRequest)
			if calls := rep.reports(); len(calls) != 0 {
				t.Errorf("the reporter was called %d times", len(calls))
			}
			checkNoToken(t, rec, logs, liveKey, stranger)
		})
	}
}

func TestEmptyAlert(t *testing.T) {
	gh := newSigner(t, "key-1")
	h, _ := newHandler(t, newFakeReporter(), []signer{gh})
	rec := serve(h, gh.request(t, " [ ]\n"))
	if rec.Code != http.StatusOK || rec.Body.String() != "[]\n" {
		t.Errorf("got %d %q, want 200 \"[]\\n\"", rec.Code, rec.Body)
	}
}

func TestTooManyMatches(t *testing.T) {
	gh := newSigner(t, "key-1")
	batch := func(n int) string {
		ms := make([]string, n)
		for i := range ms {
			ms[i] = fmt.Sprintf(`{"token":"tok_%d","type":"keyward_api_key"}`, i)
		}
		return "[" + strings.Join(ms, ",") + "]"
	}
	for _, tc := range []struct {
		n    int
		want int
	}{{3, http.StatusOK}, {4, http.StatusRequestEntityTooLarge}, {100, http.StatusRequestEntityTooLarge}} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			rep := newFakeReporter()
			h, _ := newHandler(t, rep, []signer{gh}, secretscanning.WithMaxMatches(3))
			rec := serve(h, gh.request(t, batch(tc.n)))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.want, rec.Body)
			}
			wantCalls := 0
			if tc.want == http.StatusOK {
				wantCalls = tc.n
			} else {
				checkProblem(t, rec, tc.want)
			}
			if calls := rep.reports(); len(calls) != wantCalls {
				t.Errorf("the reporter was called %d times, want %d", len(calls), wantCalls)
			}
		})
	}
}

func TestReportFailure(t *testing.T) {
	gh := newSigner(t, "key-1")
	body := `[
		{"token":"` + liveKey + `","type":"keyward_api_key"},
		{"token":"` + testKey + `","type":"keyward_api_key"},
		{"token":"` + stranger + `","type":"keyward_api_key"}
	]`
	tests := []struct {
		name       string
		fail       map[string]error
		wantStatus int
	}{
		{"store unavailable", map[string]error{testKey: storeDown}, http.StatusServiceUnavailable},
		{"store unavailable, wrapped", map[string]error{testKey: fmt.Errorf("exposure of %s: %w", testKey, storeDown)}, http.StatusServiceUnavailable},
		{"context ended", map[string]error{testKey: context.DeadlineExceeded}, http.StatusServiceUnavailable},
		{"another error", map[string]error{testKey: errors.New("exposure policy failed for " + testKey)}, http.StatusInternalServerError},
		{"another error after a store failure", map[string]error{liveKey: storeDown, testKey: errors.New("boom")}, http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := newFakeReporter(liveKey, testKey)
			rep.fail = tc.fail
			h, logs := newHandler(t, rep, []signer{gh})
			rec := serve(h, gh.request(t, body))
			checkProblem(t, rec, tc.wantStatus)
			retry := rec.Header().Get("Retry-After")
			if tc.wantStatus == http.StatusServiceUnavailable && retry != "5" {
				t.Errorf("Retry-After = %q, want 5", retry)
			}
			if tc.wantStatus != http.StatusServiceUnavailable && retry != "" {
				t.Errorf("Retry-After = %q on a %d", retry, tc.wantStatus)
			}
			// The tokens after the failure were still reported.
			if calls := rep.reports(); len(calls) != 3 {
				t.Errorf("%d reports, want 3: every token", len(calls))
			}
			// Errors that carry the token are logged with it cut out.
			checkNoToken(t, rec, logs, liveKey, testKey, stranger)
			if !strings.Contains(logs.String(), "reporting an exposure failed") {
				t.Errorf("the failure is not logged:\n%s", logs)
			}
		})
	}

	// GitHub retries once the store is back: every token is answered.
	rep := newFakeReporter(liveKey, testKey)
	rep.fail = map[string]error{testKey: storeDown}
	h, _ := newHandler(t, rep, []signer{gh})
	if rec := serve(h, gh.request(t, body)); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	rep.mu.Lock()
	rep.fail = nil
	rep.mu.Unlock()
	rec := serve(h, gh.request(t, body))
	var got []secretscanning.Feedback
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got) != 3 {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body)
	}
	for i, want := range []string{"true_positive", "true_positive", "false_positive"} {
		if got[i].Label != want {
			t.Errorf("retry: feedback %d is %q, want %q", i, got[i].Label, want)
		}
	}
}

func TestRequestEnded(t *testing.T) {
	gh := newSigner(t, "key-1")
	rep := newFakeReporter(liveKey)
	h, _ := newHandler(t, rep, []signer{gh})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := gh.request(t, `[{"token":"`+liveKey+`","type":"keyward_api_key"}]`).WithContext(ctx)
	rec := serve(h, r)
	checkProblem(t, rec, http.StatusServiceUnavailable)
	if calls := rep.reports(); len(calls) != 0 {
		t.Errorf("%d reports after the request ended, want none", len(calls))
	}
}

// failingKeys is a KeySource that cannot reach GitHub.
type failingKeys struct{}

func (failingKeys) Key(context.Context, string) (secretscanning.PublicKey, error) {
	return secretscanning.PublicKey{}, errors.New("dial tcp: api.github.com: no route to host")
}

func TestKeySourceFailure(t *testing.T) {
	gh := newSigner(t, "key-1")
	for _, tc := range []struct {
		name string
		ks   secretscanning.KeySource
	}{
		{"unreachable", failingKeys{}},
		{"no key in the answer", secretscanning.StaticKeys(secretscanning.PublicKey{ID: "key-1"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := newFakeReporter(liveKey)
			h, _ := newHandler(t, rep, nil, secretscanning.WithKeySource(tc.ks))
			rec := serve(h, gh.request(t, `[{"token":"`+liveKey+`","type":"keyward_api_key"}]`))
			checkProblem(t, rec, http.StatusServiceUnavailable)
			if got := rec.Header().Get("Retry-After"); got != "5" {
				t.Errorf("Retry-After = %q, want 5", got)
			}
			if calls := rep.reports(); len(calls) != 0 {
				t.Errorf("the reporter was called %d times", len(calls))
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	gh := newSigner(t, "key-1")
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		t.Run(method, func(t *testing.T) {
			rep := newFakeReporter(liveKey)
			h, _ := newHandler(t, rep, []signer{gh})
			body := `[{"token":"` + liveKey + `","type":"keyward_api_key"}]`
			r := gh.request(t, body)
			r.Method = method
			rec := serve(h, r)
			checkProblem(t, rec, http.StatusMethodNotAllowed)
			if got := rec.Header().Get("Allow"); got != http.MethodPost {
				t.Errorf("Allow = %q, want POST", got)
			}
			if calls := rep.reports(); len(calls) != 0 {
				t.Errorf("the reporter was called %d times", len(calls))
			}
		})
	}
}

func TestExposure(t *testing.T) {
	gh := newSigner(t, "key-1")
	long := "https://github.com/octo/repo/blob/main/" + strings.Repeat("a", 2000)
	for _, tc := range []struct {
		name, url, want string
	}{
		{"GitHub's URL", "https://github.com/octo/repo/blob/1a2b/config.yml", "https://github.com/octo/repo/blob/1a2b/config.yml"},
		{"no URL", "", ""},
		// What an Exposure does not take is left out rather than failing
		// the revocation.
		{"too long", long, ""},
		{"with a space", "https://github.com/octo/repo/blob/main/my file.txt", ""},
		{"not ASCII", "https://github.com/octo/repo/blob/main/café.txt", ""},
		{"with a control character", "https://github.com/octo/repo", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := newFakeReporter(liveKey)
			h, _ := newHandler(t, rep, []signer{gh}, secretscanning.WithSource("GitHub secret scanning"))
			body, _ := json.Marshal([]map[string]string{{"token": liveKey, "type": "keyward_api_key", "url": tc.url}})
			if rec := serve(h, gh.request(t, string(body))); rec.Code != http.StatusOK {
				t.Fatalf("status %d; body %s", rec.Code, rec.Body)
			}
			want := []report{{liveKey, keyward.Exposure{Source: "GitHub secret scanning", URL: tc.want}}}
			if got := rep.reports(); !reflect.DeepEqual(got, want) {
				t.Errorf("reports %+v, want %+v", got, want)
			}
		})
	}
}

// urlRefuser refuses every exposure with a URL, as a Reporter with
// stricter rules than the handler knows would.
type urlRefuser struct{ *fakeReporter }

func (r urlRefuser) ReportExposure(ctx context.Context, raw string, e keyward.Exposure) (keyward.ExposureReport, error) {
	if e.URL != "" {
		r.mu.Lock()
		r.calls = append(r.calls, report{raw, e})
		r.mu.Unlock()
		return keyward.ExposureReport{}, &keyward.InputError{Field: "url", Err: errors.New("not a URL we like")}
	}
	return r.fakeReporter.ReportExposure(ctx, raw, e)
}

func TestExposureURLRefused(t *testing.T) {
	gh := newSigner(t, "key-1")
	rep := urlRefuser{newFakeReporter(liveKey)}
	h, _ := newHandler(t, rep, []signer{gh})
	rec := serve(h, gh.request(t, `[{"token":"`+liveKey+`","type":"keyward_api_key","url":"https://github.com/octo/repo"}]`))
	want := `[{"token_hash":"` + sha(liveKey) + `","token_type":"keyward_api_key","label":"true_positive"}]` + "\n"
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("got %d %s, want 200 %s", rec.Code, rec.Body, want)
	}
	// Reported again without the URL.
	wantReports := []report{
		{liveKey, keyward.Exposure{Source: "github", URL: "https://github.com/octo/repo"}},
		{liveKey, keyward.Exposure{Source: "github"}},
	}
	if got := rep.reports(); !reflect.DeepEqual(got, wantReports) {
		t.Errorf("reports %+v, want %+v", got, wantReports)
	}
}

func TestNewHandlerErrors(t *testing.T) {
	rep := newFakeReporter()
	tests := []struct {
		name string
		r    secretscanning.Reporter
		opts []secretscanning.Option
	}{
		{"nil reporter", nil, nil},
		{"nil key source", rep, []secretscanning.Option{secretscanning.WithKeySource(nil)}},
		{"zero body limit", rep, []secretscanning.Option{secretscanning.WithMaxBodyBytes(0)}},
		{"zero match limit", rep, []secretscanning.Option{secretscanning.WithMaxMatches(0)}},
		{"empty source", rep, []secretscanning.Option{secretscanning.WithSource("")}},
		{"source with a newline", rep, []secretscanning.Option{secretscanning.WithSource("git\nhub")}},
		{"source with surrounding spaces", rep, []secretscanning.Option{secretscanning.WithSource(" github")}},
		{"source with a bidirectional override", rep, []secretscanning.Option{secretscanning.WithSource("git\u202ehub")}},
		{"source too long", rep, []secretscanning.Option{secretscanning.WithSource(strings.Repeat("g", 101))}},
		{"nil logger", rep, []secretscanning.Option{secretscanning.WithLogger(nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := secretscanning.NewHandler(tc.r, tc.opts...); err == nil || h != nil {
				t.Errorf("NewHandler = %v, %v; want an error", h, err)
			}
		})
	}
	// The defaults: GitHub's keys, fetched on demand.
	if _, err := secretscanning.NewHandler(rep); err != nil {
		t.Errorf("NewHandler with defaults: %v", err)
	}
}
