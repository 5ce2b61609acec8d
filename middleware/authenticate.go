package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/outage"
	"github.com/keyward/keyward/limit"
)

// DefaultRealm is the realm of the WWW-Authenticate challenge unless
// [WithRealm] sets another.
const DefaultRealm = "api"

// MaxHeaderLen is the longest Authorization (or key header) value accepted,
// in bytes. Keys are under 50 bytes; longer values are refused with 400
// invalid_request before anything else is done with them.
const MaxHeaderLen = 1024

// An Option configures [Authenticate].
type Option func(*config)

type config struct {
	keys      *keyward.Keys
	format    apikey.Format
	realm     string
	onError   func(http.ResponseWriter, *http.Request, error)
	onSuccess func(*http.Request, keyward.Verified) // nil when none
	mode      apikey.Mode
	keyHeader string // canonical; "" when off
	keyErrs   keyHeaderErrors
	trusted   []netip.Prefix // the networks of trusted proxies; nil when none
	limiter   limit.Limiter  // nil when none
	failure   limit.FailureMode
	public    *http.ServeMux // the patterns of WithPublic; nil when none
	err       error          // the first invalid option

	limiterHealth   outage.Log
	unlimitedWarned atomic.Bool // a key with limits was seen without a limiter
	policyFields    policyFieldCache
}

// defaultConfig answers for records put in a context by NewContext.
var defaultConfig = &config{realm: DefaultRealm, onError: WriteError}

func (c *config) setErr(err error) {
	if c.err == nil {
		c.err = err
	}
}

// WithRealm sets the realm of the WWW-Authenticate challenge, such as
// "checkout". The default is [DefaultRealm]. It must be 1 to 64 printable
// ASCII characters without '"' or '\'.
func WithRealm(realm string) Option {
	return func(c *config) {
		if !validRealm(realm) {
			c.setErr(errors.New(`middleware: WithRealm needs 1 to 64 printable ASCII characters without '"' or '\'`))
			return
		}
		c.realm = realm
	}
}

func validRealm(realm string) bool {
	if realm == "" || len(realm) > 64 {
		return false
	}
	for i := 0; i < len(realm); i++ {
		if c := realm[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// WithErrorHandler replaces the response to a refused request, for
// example to log it or to use another body format: it is the refusal
// hook, and [WithSuccessHook] the hook of requests let through. handle is
// called with an [*Error] and must write the whole response; the next
// handler is never called for a refused request, whatever handle does.
// Switch on the cause with [errors.Is]: [ErrNoCredentials],
// [ErrInvalidRequest], [keyward.ErrInvalidKey] (or its variants
// [keyward.ErrMalformedKey], [keyward.ErrUnknownKey], [keyward.ErrRevoked],
// [keyward.ErrExpired]), [ErrWrongMode], [ErrNetworkNotAllowed] (or its
// variant [ErrClientAddrUnknown]), [ErrRateLimited],
// [ErrInsufficientScope], [keyward.ErrStoreUnavailable],
// [ErrLimiterUnavailable]. [WriteError] writes the default response. The handler also answers
// refusals by [RequireScopes] and [RequireAnyScope] behind this
// Authenticate.
//
// Whatever it writes, a response must not tell an unknown key from a
// revoked one: both are one "invalid key" to a client.
func WithErrorHandler(handle func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return func(c *config) {
		if handle == nil {
			c.setErr(errors.New("middleware: WithErrorHandler needs a function"))
			return
		}
		c.onError = handle
	}
}

// WithMode accepts only keys of mode m, such as [apikey.Live] for a route
// group that moves real money. A key of the other mode is refused with 401
// invalid_token and [ErrWrongMode], whether or not it is valid: the mode
// is written in the key, so the response reveals nothing, and it is the
// same when the store is down (once the lookup fails, within the
// lifecycle's lookup timeout, as for any key). The key is still verified
// first, so that the refusal of a valid key is attributed to it: its use
// is recorded, and counted as a refusal for its mode in its usage
// ([keyward.OutcomeWrongMode]; see [keyward.Keys.CountRefusal]), and a
// canary key of the other mode trips. By default both modes are accepted:
// check [apikey.Record.Mode] in handlers that serve both.
func WithMode(m apikey.Mode) Option {
	return func(c *config) {
		if !m.Valid() {
			c.setErr(errors.New("middleware: WithMode needs apikey.Live or apikey.Test"))
			return
		}
		c.mode = m
	}
}

// WithSuccessHook calls hook for every request let through: after its key
// is verified and the key's policy (networks, limits) passed, just before
// the next handler, with the request the next handler gets (its context
// carries the key: [KeyFrom], [ClientAddrFrom]) and the key, a read-only
// view of its record, for an access log or metrics by owner. It is the
// counterpart of the refusal hook, [WithErrorHandler]. hook runs in the
// request's goroutine, on every request: keep it fast. Refusals by
// [RequireScopes] and [RequireAnyScope], which stand inside the next
// handler, come after it.
func WithSuccessHook(hook func(r *http.Request, key keyward.Verified)) Option {
	return func(c *config) {
		if hook == nil {
			c.setErr(errors.New("middleware: WithSuccessHook needs a function"))
			return
		}
		c.onSuccess = hook
	}
}

// WithKeyHeader also accepts the key, without a scheme, in the named
// header, such as "X-API-Key", for clients that cannot send an
// Authorization header. It is off by default. The header holds the key
// alone; a value with a space (such as "Bearer <key>"), control characters
// or more than [MaxHeaderLen] bytes is refused with 400 invalid_request, as
// is a request that sends a key in both headers. Keys in the query
// string are never accepted: they end up in logs and browser histories
// (RFC 6750, section 2.3).
func WithKeyHeader(name string) Option {
	return func(c *config) {
		if !validHeaderName(name) || strings.EqualFold(name, "Authorization") {
			c.setErr(fmt.Errorf("middleware: WithKeyHeader needs a header name other than Authorization, such as X-API-Key"))
			return
		}
		c.keyHeader = http.CanonicalHeaderKey(name)
		c.keyErrs = newKeyHeaderErrors(name)
	}
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isTchar(name[i]) {
			return false
		}
	}
	return true
}

// Authenticate returns middleware that lets a request through only with a
// valid API key. It reads the key from the Authorization header
// ("Authorization: Bearer <key>"; the scheme is case-insensitive, and the
// header must hold exactly one credential), verifies it with
// [keyward.Keys.Verify], and calls the next handler with the key's record
// in the request context (see [KeyFrom], [ScopesFrom], [HasScope]).
//
// It fails closed: a request without a valid key never reaches the next
// handler. It is answered by the error handler, by default [WriteError]:
// 401 without an error code when there is no key (no Authorization header,
// or one of another scheme, as RFC 6750 section 3.1 asks), 400
// invalid_request for a malformed header, 401 invalid_token for a
// malformed, unknown, revoked or expired key (one message for all four; a
// canary key gets it too, and its trip records the request's address,
// User-Agent, method and path), and 503 when the key store is unavailable,
// never 401.
//
// A verified key's policy ([apikey.Record.Policy]) is then enforced, in
// this order: its networks, against the client's address (see
// [WithTrustedProxies]; 403 [ErrNetworkNotAllowed] outside them or when the
// address is unknown), then its rate limit and quota (see [WithLimiter];
// 429 [ErrRateLimited]). A key without a policy skips both at the cost of
// one nil check.
//
// A verified key refused all the same (for its mode, its networks or its
// limits, or, behind, by [RequireScopes]) is counted against it with
// [keyward.Keys.CountRefusal]: in its usage, by reason, and by the
// lifecycle's observer (see [keyward.WithObserver]), so that metrics and
// [keyward.Owner.Usage] see every refusal of a valid key. A request let
// through is passed to the hook of [WithSuccessHook], if any.
//
// Authenticate panics if keys is nil or an option is invalid, as
// [http.ServeMux.Handle] panics on a bad pattern: both are mistakes in the
// program, found at start-up.
func Authenticate(keys *keyward.Keys, opts ...Option) func(http.Handler) http.Handler {
	if keys == nil {
		panic("middleware: Authenticate needs a *keyward.Keys")
	}
	c := &config{keys: keys, format: keys.Format(), realm: DefaultRealm, onError: WriteError, failure: limit.LetThrough}
	for _, opt := range opts {
		opt(c)
	}
	if c.err == nil && c.failure != limit.LetThrough && c.limiter == nil {
		c.err = errors.New("middleware: WithLimiterFailure needs WithLimiter")
	}
	if c.err != nil {
		panic(c.err)
	}
	c.limiterHealth = limiterOutage(keys.Logger(), c.failure)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("middleware: Authenticate needs a next handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.isPublic(r) {
				next.ServeHTTP(w, r)
				return
			}
			var cl client
			key, err := c.authenticate(r, &cl)
			if err == nil && key.Policy() != nil {
				err = c.enforce(w, r, key, &cl)
			}
			if err != nil {
				c.onError(w, r, err)
				return
			}
			kc := &keyContext{Context: r.Context(), key: key, cfg: c, addrText: cl.raw, addrFrom: cl.from}
			if cl.from == addrNone {
				kc.addrText, kc.addrFrom = r.RemoteAddr, addrRemote // parsed if asked for
			}
			r = r.WithContext(kc)
			if c.onSuccess != nil {
				c.onSuccess(r, key)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// authenticate returns the request's key, or the *Error that refuses the
// request. With trusted proxies, it resolves the client's address into cl
// first, for a canary's trip.
func (c *config) authenticate(r *http.Request, cl *client) (keyward.Verified, error) {
	raw, err := c.credential(r.Header)
	if err != nil {
		return keyward.Verified{}, newError(c.realm, err)
	}
	// The mode is written in the key: a key of the other mode is refused
	// whatever Verify says, but verified first, so that a valid key's
	// refusal is counted against it.
	wrongMode := false
	if c.mode != 0 {
		if m, perr := c.format.Parse(raw); perr == nil && m != c.mode {
			wrongMode = true
		}
	}
	addr := r.RemoteAddr
	if c.trusted != nil {
		c.resolve(r, cl)
		addr = cl.raw
		if cl.from == addrUnknown {
			addr = "unknown"
		}
	}
	key, err := c.keys.VerifyFrom(r.Context(), raw, caller(r, addr))
	if wrongMode {
		if err == nil {
			c.keys.CountRefusal(r.Context(), key.ID(), keyward.OutcomeWrongMode)
		}
		return keyward.Verified{}, wrongModeError(c.realm, c.mode)
	}
	if err != nil {
		return keyward.Verified{}, newError(c.realm, err)
	}
	return key, nil
}

// enforce checks the policy of a verified key: its networks, then its
// limits. Only keys with a policy come here. A refusal is counted against
// the key ([keyward.Keys.CountRefusal]); a limiter that fails is not the
// key's doing, and is not.
func (c *config) enforce(w http.ResponseWriter, r *http.Request, key keyward.Verified, cl *client) error {
	p := key.Policy()
	if len(p.Networks) > 0 {
		if cl.from == addrNone {
			c.resolve(r, cl)
		}
		if cl.from == addrUnknown {
			c.keys.CountRefusal(r.Context(), key.ID(), keyward.OutcomeNetworkRefused)
			return newError(c.realm, ErrClientAddrUnknown)
		}
		if !p.AllowsAddr(cl.addr) {
			c.keys.CountRefusal(r.Context(), key.ID(), keyward.OutcomeNetworkRefused)
			return newError(c.realm, ErrNetworkNotAllowed)
		}
	}
	if p.Limited() {
		return c.enforceLimits(w, r, key.ID(), p)
	}
	return nil
}

// caller describes the request's client, for the trip of a canary key:
// addr, its address, and the request. It reads the User-Agent by its
// canonical name, without allocating.
func caller(r *http.Request, addr string) keyward.Caller {
	c := keyward.Caller{Addr: addr, Method: r.Method, Path: r.URL.Path}
	if ua := r.Header["User-Agent"]; len(ua) > 0 {
		c.UserAgent = ua[0]
	}
	return c
}

// credential returns the raw key the request carries, or why there is none.
func (c *config) credential(h http.Header) (string, error) {
	var raw string
	found := false
	switch v := h["Authorization"]; len(v) {
	case 0:
	case 1:
		key, ok, err := bearer(v[0])
		if err != nil {
			return "", err
		}
		raw, found = key, ok
	default:
		return "", errSeveralHeaders
	}
	if c.keyHeader != "" {
		switch v := h[c.keyHeader]; len(v) {
		case 0:
		case 1:
			key, err := c.keyHeaderValue(v[0])
			if err != nil {
				return "", err
			}
			if key != "" {
				if found {
					return "", errTwoSources
				}
				raw, found = key, true
			}
		default:
			return "", c.keyErrs.several
		}
	}
	if !found {
		return "", ErrNoCredentials
	}
	return raw, nil
}

// keyHeaderValue returns the key in a value of the key header: the value
// itself, without a scheme. A value that is not a well-formed key goes on
// to verification and is refused as an invalid key.
func (c *config) keyHeaderValue(v string) (string, error) {
	v, err := checkValue(v)
	switch {
	case err == errTooLong:
		return "", c.keyErrs.tooLong
	case err != nil:
		return "", c.keyErrs.characters
	case strings.IndexByte(v, ' ') >= 0:
		return "", c.keyErrs.notAlone
	}
	return v, nil
}

// keyHeaderErrors are the reasons for ErrInvalidRequest that concern the
// key header, naming it.
type keyHeaderErrors struct {
	several, characters, tooLong, notAlone *requestError
}

func newKeyHeaderErrors(name string) keyHeaderErrors {
	return keyHeaderErrors{
		several: &requestError{
			"the " + name + " header is repeated",
			"Send exactly one " + name + " header.",
		},
		characters: &requestError{
			"control or non-ASCII characters in the " + name + " header",
			"The " + name + " header contains control or non-ASCII characters.",
		},
		tooLong: &requestError{
			"the " + name + " header is too long",
			"The " + name + " header is longer than " + strconv.Itoa(MaxHeaderLen) + " bytes.",
		},
		notAlone: &requestError{
			"the " + name + " header holds more than a key",
			"The " + name + " header must hold the API key alone, without a scheme.",
		},
	}
}

// bearer parses an Authorization value. It returns the token and true for
// "Bearer <token>" (RFC 6750 section 2.1: the scheme case-insensitive, one
// or more spaces, one b64token), false for an empty value or another
// scheme, and an error for a malformed value.
func bearer(v string) (token string, ok bool, err error) {
	// The fast path, for the header as clients send it: one pass over the
	// token. isB64Token refuses spaces, controls and non-ASCII bytes, so
	// this returns exactly what the full checks below would.
	if len(v) > len("Bearer ") && len(v) <= MaxHeaderLen &&
		strings.EqualFold(v[:len("Bearer ")], "Bearer ") && isB64Token(v[len("Bearer "):]) {
		return v[len("Bearer "):], true, nil
	}
	return parseBearer(v)
}

// parseBearer is bearer without its fast path.
func parseBearer(v string) (token string, ok bool, err error) {
	v, err = checkValue(v)
	if err != nil || v == "" {
		return "", false, err
	}
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	token = strings.TrimLeft(rest, " ")
	switch {
	case token == "":
		return "", false, errNoToken
	case strings.IndexByte(token, ' ') >= 0:
		return "", false, errSeveralCredentials
	case !isB64Token(token):
		return "", false, errSyntax
	}
	return token, true, nil
}

// checkValue refuses a header value that is too long or holds control or
// non-ASCII characters, and trims the spaces and tabs around it, as the
// HTTP server does, so a handler called directly sees the same.
func checkValue(v string) (string, error) {
	if len(v) > MaxHeaderLen {
		return "", errTooLong
	}
	v = strings.Trim(v, " \t")
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f {
			return "", errCharacters
		}
	}
	return v, nil
}

// isB64Token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		if !b64tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// b64tokenChar marks the characters of a b64token before its padding: a
// table lookup per byte, on the path of every request.
var b64tokenChar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
	}
	return t
}()
