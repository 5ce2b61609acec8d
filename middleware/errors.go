package middleware

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/problem"
	"github.com/keyward/keyward/scope"
)

// Sentinel errors of this package. The error handler (see
// [WithErrorHandler]) receives an [*Error] whose cause matches, through
// [errors.Is], one of them or one of keyward's [keyward.ErrInvalidKey] and
// [keyward.ErrStoreUnavailable].
var (
	// ErrNoCredentials: the request carries no API key: no Authorization
	// header, an empty one, or one with a scheme other than Bearer.
	ErrNoCredentials = errors.New("middleware: no API key in the request")
	// ErrInvalidRequest: the Authorization header (or the key header) is
	// malformed: several such headers, several credentials, control or
	// non-ASCII characters, a token outside RFC 6750's syntax, more than
	// [MaxHeaderLen] bytes, or a key sent in two headers at once.
	ErrInvalidRequest = errors.New("middleware: malformed Authorization header")
	// ErrWrongMode: the key is of another mode than the one the route
	// accepts (see [WithMode]).
	ErrWrongMode = errors.New("middleware: API key of the wrong mode")
	// ErrInsufficientScope: the key lacks a scope the route requires (see
	// [RequireScopes] and [RequireAnyScope]).
	ErrInsufficientScope = errors.New("middleware: API key lacks a required scope")
	// ErrNotAuthenticated: [RequireScopes] or [RequireAnyScope] found no
	// key in the request context, because [Authenticate] did not run
	// before it. It is a wiring mistake, answered with 500.
	ErrNotAuthenticated = errors.New("middleware: no API key in the request context; is Authenticate installed before RequireScopes?")
	// ErrNetworkNotAllowed: the key's policy lists networks
	// ([apikey.Policy.Networks]) and the client's address is in none of
	// them, or is unknown ([ErrClientAddrUnknown]).
	ErrNetworkNotAllowed = errors.New("middleware: API key not allowed from the client's network")
	// ErrRateLimited: the key is over its rate limit or its quota (see
	// [WithLimiter]); [Error.ViolatedPolicies] says which.
	ErrRateLimited = errors.New("middleware: API key over its rate limit or quota")
	// ErrLimiterUnavailable: the limiter could not decide (its error is
	// wrapped too) and [WithLimiterFailure] is [limit.Refuse].
	ErrLimiterUnavailable = errors.New("middleware: the rate limiter could not decide")
)

// ErrClientAddrUnknown: the key's policy lists networks but the client's
// address could not be determined: RemoteAddr is not an IP address, or,
// behind trusted proxies (see [WithTrustedProxies]), the forwarding
// headers are malformed, contradict each other, or name the client
// "unknown" or by an obfuscated identifier. It matches
// [ErrNetworkNotAllowed] too, and gets the same response: the request is
// refused, never taken for the proxy's own.
var ErrClientAddrUnknown error = &networkError{"middleware: API key with allowed networks, from an unknown client address"}

// networkError is a reason for ErrNetworkNotAllowed.
type networkError struct{ msg string }

func (e *networkError) Error() string        { return e.msg }
func (e *networkError) Is(target error) bool { return target == ErrNetworkNotAllowed }

// limiterError is the failure of a limiter, for ErrLimiterUnavailable.
type limiterError struct{ err error }

func (e *limiterError) Error() string        { return ErrLimiterUnavailable.Error() + ": " + e.err.Error() }
func (e *limiterError) Is(target error) bool { return target == ErrLimiterUnavailable }
func (e *limiterError) Unwrap() error        { return e.err }

// retryAfter is the Retry-After value, in seconds, of 503 responses.
const retryAfter = "5"

// Problem types (RFC 9457): each is the documentation of its error.
const (
	typeNoCredentials     = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrNoCredentials"
	typeInvalidRequest    = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrInvalidRequest"
	typeInvalidKey        = "https://pkg.go.dev/github.com/keyward/keyward#ErrInvalidKey"
	typeWrongMode         = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrWrongMode"
	typeInsufficientScope = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrInsufficientScope"
	typeStoreUnavailable  = "https://pkg.go.dev/github.com/keyward/keyward#ErrStoreUnavailable"
	typeNetwork           = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrNetworkNotAllowed"
	typeLimiter           = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrLimiterUnavailable"
	// typeQuotaExceeded is the problem type that the RateLimit header
	// draft defines for a request over its quota policies, with the
	// member "violated-policies" (section 5.1 of
	// draft-ietf-httpapi-ratelimit-headers-11).
	typeQuotaExceeded  = "https://iana.org/assignments/http-problem-types#quota-exceeded"
	titleQuotaExceeded = "Request cannot be satisfied as assigned quota has been exceeded"
)

// RFC 6750 error codes.
const (
	codeInvalidRequest    = "invalid_request"
	codeInvalidToken      = "invalid_token"
	codeInsufficientScope = "insufficient_scope"
)

// An Error is a refused request: what [Authenticate], [RequireScopes] and
// [RequireAnyScope] pass to the error handler, and what [WriteError]
// writes. Its public fields are safe to show to a client; Err is not.
type Error struct {
	// Status is the HTTP status of the response: 400, 401, 403, 429, 500
	// or 503.
	Status int
	// Code is the RFC 6750 error code for the WWW-Authenticate challenge:
	// "invalid_request", "invalid_token", "insufficient_scope", or "" when
	// none applies (no credentials, store unavailable, internal error).
	Code string
	// Type is the RFC 9457 problem type, a URI.
	Type string
	// Title is the RFC 9457 short summary of the problem type.
	Title string
	// Detail explains this occurrence for the client. It never holds the
	// key, nor any internal error's text, and is the same for every
	// invalid key, whether it is malformed, unknown, revoked or expired.
	Detail string
	// Scopes are the scopes the route requires, for insufficient_scope.
	Scopes []scope.Scope
	// Realm is the realm of the challenge (see [WithRealm]).
	Realm string
	// RetryAfter is, for 429, how long until the key may make a request
	// again, as the limiter said; [WriteError] sends it in Retry-After,
	// rounded up to whole seconds.
	RetryAfter time.Duration
	// ViolatedPolicies names, for 429, the limits the key is over: "rate",
	// "quota" or both, as the RateLimit header fields name them.
	ViolatedPolicies []string
	// Err is the cause, for logs and [errors.Is]: a sentinel of this
	// package, an error of package keyward such as [keyward.ErrRevoked] or
	// a [*keyward.StoreError], or an unexpected error. Never send its text
	// to a client.
	Err error
}

// Error returns the status, the code and the cause, for logs. It never
// contains the key.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("middleware: ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// requestError is a reason for ErrInvalidRequest, with the public detail
// that explains it.
type requestError struct {
	msg    string
	detail string
}

func (e *requestError) Error() string        { return "middleware: malformed Authorization header: " + e.msg }
func (e *requestError) Is(target error) bool { return target == ErrInvalidRequest }

// The reasons for ErrInvalidRequest.
var (
	errSeveralHeaders = &requestError{
		"the header is repeated",
		"Send exactly one Authorization header.",
	}
	errSeveralCredentials = &requestError{
		"more than one credential",
		"The Authorization header must hold exactly one credential: Authorization: Bearer <key>.",
	}
	errNoToken = &requestError{
		"the Bearer scheme has no key",
		"The Authorization header names the Bearer scheme but holds no key: Authorization: Bearer <key>.",
	}
	errCharacters = &requestError{
		"control or non-ASCII characters",
		"The Authorization header contains control or non-ASCII characters.",
	}
	errSyntax = &requestError{
		"not an RFC 6750 token",
		"The credential in the Authorization header is not a valid Bearer token.",
	}
	errTooLong = &requestError{
		"too long",
		"The Authorization header is longer than " + strconv.Itoa(MaxHeaderLen) + " bytes.",
	}
	errTwoSources = &requestError{
		"a key is sent in two headers",
		"Send the API key in one header only.",
	}
	// The errors of the key header are made by WithKeyHeader, naming it.
)

// newError classifies err, a cause of refusal, into the response that
// answers it.
func newError(realm string, err error) *Error {
	e := &Error{Realm: realm, Err: err}
	var reqErr *requestError
	switch {
	case errors.Is(err, ErrNoCredentials):
		e.Status, e.Type, e.Title = http.StatusUnauthorized, typeNoCredentials, "Missing API key"
		e.Detail = "Send an API key in the Authorization header: Authorization: Bearer <key>."
	case errors.As(err, &reqErr):
		e.Status, e.Code, e.Type, e.Title = http.StatusBadRequest, codeInvalidRequest, typeInvalidRequest, "Malformed Authorization header"
		e.Detail = reqErr.detail
	case errors.Is(err, keyward.ErrInvalidKey):
		// One message for malformed, unknown, revoked and expired keys.
		e.Status, e.Code, e.Type, e.Title = http.StatusUnauthorized, codeInvalidToken, typeInvalidKey, "Invalid API key"
		e.Detail = "The API key is not valid. Check that it was copied in full and that it is still active."
	case errors.Is(err, keyward.ErrStoreUnavailable):
		e.Status, e.Type, e.Title = http.StatusServiceUnavailable, typeStoreUnavailable, "Service unavailable"
		e.Detail = "API keys cannot be checked right now. Retry later."
	case errors.Is(err, ErrNetworkNotAllowed):
		// One message whether the address is outside the key's networks
		// or unknown: neither the list nor the address is echoed.
		e.Status, e.Type, e.Title = http.StatusForbidden, typeNetwork, "Network not allowed"
		e.Detail = "This API key is not allowed from this network."
	case errors.Is(err, ErrLimiterUnavailable):
		e.Status, e.Type, e.Title = http.StatusServiceUnavailable, typeLimiter, "Service unavailable"
		e.Detail = "The rate limits of this API key cannot be checked right now. Retry later."
	default:
		e.Status, e.Type, e.Title = http.StatusInternalServerError, "about:blank", "Internal Server Error"
		e.Detail = "The request could not be authenticated."
	}
	return e
}

// wrongModeError returns the refusal of a key whose mode is not want.
func wrongModeError(realm string, want apikey.Mode) *Error {
	return &Error{
		Status: http.StatusUnauthorized,
		Code:   codeInvalidToken,
		Type:   typeWrongMode,
		Title:  "Wrong key mode",
		Detail: "This endpoint accepts only " + want.String() + " keys.",
		Realm:  realm,
		Err:    ErrWrongMode,
	}
}

// scopeError returns the refusal of a key that lacks scopes: all of them
// if all is true, or at least one.
func scopeError(realm string, scopes []scope.Scope, all bool) *Error {
	list := joinScopes(scopes, ", ")
	detail := "This API key lacks the scope " + list + "."
	if len(scopes) > 1 {
		if all {
			detail = "This API key lacks some of the scopes this endpoint requires: " + list + "."
		} else {
			detail = "This API key holds none of the scopes this endpoint accepts: " + list + "."
		}
	}
	return &Error{
		Status: http.StatusForbidden,
		Code:   codeInsufficientScope,
		Type:   typeInsufficientScope,
		Title:  "Insufficient scope",
		Detail: detail,
		Scopes: scopes,
		Realm:  realm,
		Err:    ErrInsufficientScope,
	}
}

// rateLimitedError returns the refusal of a key over its limits: violated
// names them, retry is the limiter's RetryAfter.
func rateLimitedError(realm string, violated []string, retry time.Duration) *Error {
	detail := "This API key is over its rate limit. Retry after the number of seconds in the Retry-After header."
	if slices.Contains(violated, policyQuota) {
		detail = "This API key has used all the requests of its quota for this period."
	}
	return &Error{
		Status:           http.StatusTooManyRequests,
		Type:             typeQuotaExceeded,
		Title:            titleQuotaExceeded,
		Detail:           detail,
		Realm:            realm,
		RetryAfter:       retry,
		ViolatedPolicies: violated,
		Err:              ErrRateLimited,
	}
}

// notAuthenticatedError returns the refusal of RequireScopes without a key
// in the context: a server misconfiguration.
func notAuthenticatedError() *Error {
	e := newError(DefaultRealm, ErrNotAuthenticated)
	e.Detail = "The request could not be authorized."
	return e
}

func joinScopes(scopes []scope.Scope, sep string) string {
	var b strings.Builder
	for i, s := range scopes {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(string(s))
	}
	return b.String()
}

// WriteError writes the standard response for err, the error an error
// handler receives: the status, the RFC 6750 challenge and an RFC 9457
// body. An error handler that only logs can end with it:
//
//	middleware.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
//		logger.Warn("API key refused", "err", err)
//		middleware.WriteError(w, r, err)
//	})
//
// The response, by case:
//
//   - [ErrNoCredentials]: 401 with WWW-Authenticate: Bearer realm="api".
//   - [ErrInvalidRequest]: 400 with Bearer realm="api", error="invalid_request".
//   - [keyward.ErrInvalidKey], [ErrWrongMode]: 401 with Bearer realm="api",
//     error="invalid_token".
//   - [ErrInsufficientScope]: 403 with Bearer realm="api",
//     error="insufficient_scope", scope="sessions:write".
//   - [keyward.ErrStoreUnavailable], [ErrLimiterUnavailable]: 503 with
//     Retry-After: 5 and no challenge.
//   - [ErrNetworkNotAllowed] (and [ErrClientAddrUnknown]): 403 and no
//     challenge.
//   - [ErrRateLimited]: 429 with Retry-After, the limiter's wait in whole
//     seconds, rounded up, and no challenge. (The RateLimit and
//     RateLimit-Policy fields are set by [Authenticate] before the error
//     handler runs.)
//   - anything else: 500.
//
// Every body is application/problem+json with type, title, status and
// detail, plus required_scopes for insufficient_scope and
// violated-policies for 429, written by package
// [github.com/keyward/keyward/problem]. An error that is not an [*Error] is
// answered with a generic 500; its text is never sent.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = newError(DefaultRealm, err)
	}
	h := w.Header()
	if ch := challenge(e); ch != "" {
		h.Set("WWW-Authenticate", ch)
	}
	switch e.Status {
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", retryAfter)
	case http.StatusTooManyRequests:
		h.Set("Retry-After", strconv.FormatInt(ceilSeconds(e.RetryAfter, 1), 10))
	}
	p := problem.Problem{Type: e.Type, Title: e.Title, Status: e.Status, Detail: e.Detail}
	switch {
	case len(e.Scopes) > 0:
		p.Extensions = map[string]any{"required_scopes": e.Scopes}
	case len(e.ViolatedPolicies) > 0:
		p.Extensions = map[string]any{"violated-policies": e.ViolatedPolicies}
	}
	problem.Write(w, p)
}

// challenge returns the WWW-Authenticate value of e, or "" if its
// response carries none.
func challenge(e *Error) string {
	if e.Status != http.StatusUnauthorized && e.Code == "" {
		return ""
	}
	realm := e.Realm
	if !validRealm(realm) {
		realm = DefaultRealm
	}
	var b strings.Builder
	b.WriteString(`Bearer realm="`)
	b.WriteString(realm)
	b.WriteByte('"')
	if e.Code != "" {
		b.WriteString(`, error="`)
		b.WriteString(e.Code)
		b.WriteByte('"')
	}
	if len(e.Scopes) > 0 {
		b.WriteString(`, scope="`)
		b.WriteString(joinScopes(e.Scopes, " "))
		b.WriteByte('"')
	}
	return b.String()
}
