package secretscanning

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/problem"
)

// A Reporter reports exposed keys: [*keyward.Keys] is one (see
// [keyward.Keys.ReportExposure]). The handler relies on its contract: a
// raw text that is not a key of the store (malformed or unknown) returns
// Known false and a nil error; a known key is marked exposed and returns
// Known true; a repeated report changes nothing more and returns Known
// true, First false; a store failure returns an error matching
// [keyward.ErrStoreUnavailable]. It must be safe for concurrent use.
type Reporter interface {
	ReportExposure(ctx context.Context, raw string, e keyward.Exposure) (keyward.ExposureReport, error)
}

var _ Reporter = (*keyward.Keys)(nil)

// The request headers that carry GitHub's signature.
const (
	// HeaderKeyID names the key_identifier of the key that signed the
	// request.
	HeaderKeyID = "Github-Public-Key-Identifier"
	// HeaderSignature holds the signature of the raw body: an ASN.1 DER
	// ECDSA signature of its SHA-256 digest, in standard base64.
	HeaderSignature = "Github-Public-Key-Signature"
)

// The labels of [Feedback], the only two GitHub accepts.
const (
	// LabelTruePositive: the token is a key of the store, now reported
	// exposed.
	LabelTruePositive = "true_positive"
	// LabelFalsePositive: the token is not a key of the store.
	LabelFalsePositive = "false_positive"
)

// Defaults of [NewHandler].
const (
	// DefaultMaxBodyBytes is the largest request body accepted, 1 MiB.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxMatches is the most matches accepted in one request.
	DefaultMaxMatches = 1000
	// DefaultSource is the [keyward.Exposure] Source of the reports.
	DefaultSource = "github"
)

// A Feedback is one element of the response body: GitHub's feedback
// format, with the token in hashed form. The response never carries a raw
// token.
type Feedback struct {
	// TokenHash is the SHA-256 of the raw token, in lowercase hexadecimal:
	// the same value as the key's [apikey.Hash] in the store.
	TokenHash string `json:"token_hash"`
	// TokenType is the type of the match, as GitHub sent it.
	TokenType string `json:"token_type"`
	// Label is [LabelTruePositive] or [LabelFalsePositive].
	Label string `json:"label"`
}

// retryAfter is the Retry-After value, in seconds, of 503 responses.
const retryAfter = "5"

// Header limits: GitHub's identifiers are 64 hexadecimal digits, and a
// P-256 signature is at most 72 bytes, 96 in base64.
const (
	maxKeyIDLen     = 256
	maxSignatureLen = 256
)

// typeStoreUnavailable is the problem type of a store failure, as the
// middleware writes it.
const typeStoreUnavailable = "https://pkg.go.dev/github.com/keyward/keyward#ErrStoreUnavailable"

// Handler is the http.Handler GitHub posts secret-scanning alerts to (see
// the package documentation). It is safe for concurrent use.
type Handler struct {
	reporter   Reporter
	keys       KeySource
	maxBody    int64
	maxMatches int
	source     string
	logger     *slog.Logger
}

type config struct {
	keys       KeySource
	maxBody    int64
	maxMatches int
	source     string
	logger     *slog.Logger
}

// An Option configures [NewHandler].
type Option func(*config) error

// WithKeySource sets where GitHub's public keys come from. The default is
// a [GitHubKeys] with default settings, which fetches them from GitHub.
func WithKeySource(ks KeySource) Option {
	return func(c *config) error {
		if ks == nil {
			return errors.New("secretscanning: WithKeySource needs a key source")
		}
		c.keys = ks
		return nil
	}
}

// WithMaxBodyBytes sets the largest request body accepted, instead of
// [DefaultMaxBodyBytes]; a larger one is answered with 413 before its
// signature is checked. It must be positive.
func WithMaxBodyBytes(n int64) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("secretscanning: the body limit must be positive")
		}
		c.maxBody = n
		return nil
	}
}

// WithMaxMatches sets the most matches accepted in one request, instead
// of [DefaultMaxMatches]; a signed body with more is answered with 413 and
// none of its matches is reported. It must be positive.
func WithMaxMatches(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("secretscanning: the match limit must be positive")
		}
		c.maxMatches = n
		return nil
	}
}

// WithSource sets the Source of the exposures reported, instead of
// [DefaultSource]: what [keyward.Exposure] takes, 1 to
// [apikey.MaxSourceLen] bytes that [apikey.ValidName] accepts.
func WithSource(source string) Option {
	return func(c *config) error {
		if err := apikey.ValidName(source); err != nil || len(source) > apikey.MaxSourceLen {
			return fmt.Errorf("secretscanning: the source must be 1 to %d bytes that apikey.ValidName accepts", apikey.MaxSourceLen)
		}
		c.source = source
		return nil
	}
}

// WithLogger sets where the handler reports what operators must know:
// keys reported exposed, refused requests and failures. The default is
// [slog.Default]. Log lines carry counts and the first 12 hexadecimal
// digits of a token's SHA-256 at most, never a token.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("secretscanning: WithLogger needs a logger")
		}
		c.logger = l
		return nil
	}
}

// NewHandler returns the handler that reports to r the keys GitHub finds.
func NewHandler(r Reporter, opts ...Option) (*Handler, error) {
	if r == nil {
		return nil, errors.New("secretscanning: NewHandler needs a reporter")
	}
	c := config{
		maxBody:    DefaultMaxBodyBytes,
		maxMatches: DefaultMaxMatches,
		source:     DefaultSource,
		logger:     slog.Default(),
	}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	if c.keys == nil {
		gh, err := NewGitHubKeys(nil)
		if err != nil {
			return nil, err
		}
		c.keys = gh
	}
	return &Handler{
		reporter:   r,
		keys:       c.keys,
		maxBody:    c.maxBody,
		maxMatches: c.maxMatches,
		source:     c.source,
		logger:     c.logger,
	}, nil
}

// ServeHTTP handles one alert from GitHub: it checks the signature of the
// raw body, then parses the matches, reports each distinct token to the
// Reporter and answers with the feedback. See the package documentation
// for the responses.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		problem.Write(w, problem.Problem{
			Status: http.StatusMethodNotAllowed,
			Detail: "GitHub's secret scanning alerts are sent with POST.",
		})
		return
	}
	keyID, sig, ok := signatureHeaders(r.Header)
	if !ok {
		h.unauthorized(w, r, "missing or malformed signature headers")
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}

	// The signature covers the exact bytes received: nothing of the body
	// is parsed before it verifies.
	pk, err := h.keys.Key(r.Context(), keyID)
	switch {
	case errors.Is(err, ErrUnknownKeyID):
		h.unauthorized(w, r, "unknown key identifier")
		return
	case err != nil:
		h.logger.LogAttrs(r.Context(), slog.LevelError, "secretscanning: GitHub's public keys are unavailable",
			slog.String("error", err.Error()))
		h.unavailable(w, "", "GitHub's public keys could not be obtained; retry later.")
		return
	case pk.Key == nil || pk.Key.Curve != elliptic.P256():
		h.logger.LogAttrs(r.Context(), slog.LevelError, "secretscanning: the key source returned a key that is not ECDSA P-256",
			slog.String("key_id", keyID))
		h.unavailable(w, "", "GitHub's public keys could not be obtained; retry later.")
		return
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pk.Key, digest[:], sig) {
		h.unauthorized(w, r, "signature does not verify")
		return
	}

	matches, err := parseMatches(body, h.maxMatches)
	switch {
	case errors.Is(err, errTooMany):
		h.logger.LogAttrs(r.Context(), slog.LevelWarn, "secretscanning: signed alert refused: too many matches",
			slog.Int("max_matches", h.maxMatches))
		problem.Write(w, problem.Problem{
			Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("The body holds more than %d matches.", h.maxMatches),
		})
		return
	case err != nil:
		h.logger.LogAttrs(r.Context(), slog.LevelWarn, "secretscanning: signed alert refused: malformed body")
		problem.Write(w, problem.Problem{Status: http.StatusBadRequest, Detail: upperFirst(err.Error()) + "."})
		return
	}

	feedback, failure := h.report(r.Context(), matches)
	switch {
	case failure != nil && retryable(failure):
		h.unavailable(w, typeStoreUnavailable, "The key store is unavailable; retry later.")
		return
	case failure != nil:
		problem.Write(w, problem.Problem{
			Status: http.StatusInternalServerError,
			Detail: "The exposures could not all be reported; retry later.",
		})
		return
	}
	out, err := json.Marshal(feedback) // strings only: cannot fail
	if err != nil {
		problem.Write(w, problem.Problem{Status: http.StatusInternalServerError})
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(append(out, '\n'))
}

// report reports every distinct token of matches and returns the
// feedback: one element per distinct token and type, in the order of
// their first match. If a report fails, it goes on with the other tokens,
// which is safe since reports are idempotent, until the request's context
// ends; then it returns no feedback but the failure: one that [retryable]
// accepts if every failure is, else another.
func (h *Handler) report(ctx context.Context, matches []match) ([]Feedback, error) {
	type result struct {
		label string // "" if the report failed
		hash  string
	}
	results := make(map[string]result, len(matches)) // by raw token
	feedback := make([]Feedback, 0, len(matches))
	given := make(map[Feedback]bool, len(matches))
	var known, first, failed int
	var failure error
	for _, m := range matches {
		res, done := results[m.Token]
		if !done {
			res = result{hash: apikey.HashOf(m.Token).String()}
			var rep keyward.ExposureReport
			err := ctx.Err() // once the request ended, report nothing more
			if err == nil {
				rep, err = h.reportOne(ctx, m)
			}
			switch {
			case err != nil:
				failed++
				if failure == nil {
					// The first failure is logged; the others are counted.
					h.logger.LogAttrs(ctx, slog.LevelError, "secretscanning: reporting an exposure failed",
						slog.String("token_hash", res.hash[:12]),
						slog.String("error", redact(err.Error(), m.Token)))
				}
				if failure == nil || !retryable(err) {
					failure = err
				}
			case rep.Known:
				res.label = LabelTruePositive
				known++
				if rep.First {
					first++
				}
				h.logger.LogAttrs(ctx, slog.LevelWarn, "secretscanning: GitHub found an exposed key",
					slog.String("token_hash", res.hash[:12]),
					slog.Bool("first_report", rep.First),
					slog.Bool("revoked", rep.Record.Revoked()),
					slog.String("token_type", m.Type),
					slog.String("found_in", m.Source))
			default:
				res.label = LabelFalsePositive
			}
			results[m.Token] = res
		}
		if res.label == "" {
			continue
		}
		fb := Feedback{TokenHash: res.hash, TokenType: m.Type, Label: res.label}
		if !given[fb] {
			given[fb] = true
			feedback = append(feedback, fb)
		}
	}
	h.logger.LogAttrs(ctx, slog.LevelInfo, "secretscanning: alert processed",
		slog.Int("matches", len(matches)),
		slog.Int("tokens", len(results)),
		slog.Int("true_positives", known),
		slog.Int("newly_exposed", first),
		slog.Int("false_positives", len(results)-known-failed),
		slog.Int("failed", failed))
	if failure != nil {
		return nil, failure
	}
	return feedback, nil
}

// retryable reports whether a report failed for a reason that a later
// attempt may not meet: the store was unavailable, or the request ended
// (GitHub gave up waiting).
func retryable(err error) bool {
	return errors.Is(err, keyward.ErrStoreUnavailable) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// reportOne reports the token of m. The URL is left out if it is not
// what a [keyward.Exposure] takes (at most [apikey.MaxURLLen] bytes of
// printable ASCII without spaces), and, should the Reporter still refuse
// the input, the report is made once more without it: a URL must never
// stand in the way of a revocation.
//
// The report's actor, in the audit trail, is a reporter named by the
// source, unless the context names one already.
func (h *Handler) reportOne(ctx context.Context, m match) (keyward.ExposureReport, error) {
	if audit.ActorFrom(ctx).IsZero() {
		ctx = audit.WithActor(ctx, audit.Actor{Type: audit.TypeReporter, ID: h.source})
	}
	url := m.URL
	if apikey.ValidExposureURL(url) != nil {
		url = ""
	}
	rep, err := h.reporter.ReportExposure(ctx, m.Token, keyward.Exposure{Source: h.source, URL: url})
	if url != "" && errors.Is(err, keyward.ErrInvalidInput) {
		rep, err = h.reporter.ReportExposure(ctx, m.Token, keyward.Exposure{Source: h.source})
	}
	return rep, err
}

// signatureHeaders returns the key identifier and the decoded signature
// of a request, and whether both are present once and well formed.
func signatureHeaders(hdr http.Header) (keyID string, sig []byte, ok bool) {
	ids, sigs := hdr.Values(HeaderKeyID), hdr.Values(HeaderSignature)
	if len(ids) != 1 || len(sigs) != 1 {
		return "", nil, false
	}
	keyID, enc := ids[0], sigs[0]
	if keyID == "" || len(keyID) > maxKeyIDLen || enc == "" || len(enc) > maxSignatureLen {
		return "", nil, false
	}
	sig, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", nil, false
	}
	return keyID, sig, true
}

// readBody reads the whole body within the limit. If it cannot, it
// answers the request and returns false.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	tooLarge := func() {
		h.logger.LogAttrs(r.Context(), slog.LevelWarn, "secretscanning: alert refused: body too large",
			slog.Int64("max_body_bytes", h.maxBody))
		problem.Write(w, problem.Problem{
			Status: http.StatusRequestEntityTooLarge,
			Detail: "The body is larger than " + strconv.FormatInt(h.maxBody, 10) + " bytes.",
		})
	}
	if r.ContentLength > h.maxBody {
		tooLarge()
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge()
		} else {
			problem.Write(w, problem.Problem{Status: http.StatusBadRequest, Detail: "The body could not be read."})
		}
		return nil, false
	}
	return body, true
}

// unauthorized answers a request whose signature does not verify. The
// response is the same whatever the reason, which only the log tells.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, reason string) {
	h.logger.LogAttrs(r.Context(), slog.LevelWarn, "secretscanning: alert refused: not signed by GitHub",
		slog.String("reason", reason))
	// RFC 9110 asks a 401 for a challenge; GitHub's scheme has no
	// registered name, so this one names its headers.
	w.Header().Set("WWW-Authenticate", `Github-Public-Key-Signature realm="secret-scanning"`)
	problem.Write(w, problem.Problem{
		Status: http.StatusUnauthorized,
		Detail: "The request does not carry a valid signature by one of GitHub's secret scanning keys.",
	})
}

// unavailable answers 503 with Retry-After.
func (h *Handler) unavailable(w http.ResponseWriter, typ, detail string) {
	w.Header().Set("Retry-After", retryAfter)
	problem.Write(w, problem.Problem{Type: typ, Status: http.StatusServiceUnavailable, Detail: detail})
}

// redact replaces token in s, so that an error a Reporter wrapped around a
// token cannot carry it into a log.
func redact(s, token string) string {
	return strings.ReplaceAll(s, token, apikey.Redacted)
}

// upperFirst capitalises the first letter of an ASCII sentence.
func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
