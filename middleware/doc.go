// Package middleware authenticates net/http requests with keyward API keys.
//
// Wrap a handler with [Authenticate] and guard routes with [RequireScopes]:
//
//	mux := http.NewServeMux()
//	mux.Handle("POST /api/v1/sessions", middleware.RequireScopes(scope.SessionsWrite)(createSession))
//	handler := middleware.Authenticate(keys)(mux)
//
// Both are func(http.Handler) http.Handler, so they work with
// [http.ServeMux], chi's Use and With, and any router that takes that
// signature. Handlers read the key with [KeyFrom], [ScopesFrom] and
// [HasScope]. Handler tests put a record in a context with [NewContext], or
// issue a real key with [github.com/keyward/keyward/keywardtest].
//
// # Responses
//
// Authenticate fails closed: a request without a valid key never reaches
// the next handler. Refusals follow RFC 6750 (the WWW-Authenticate
// challenge) and RFC 9457 (an application/problem+json body with type,
// title, status and detail):
//
//	case                              status  WWW-Authenticate
//	no key, or another scheme         401     Bearer realm="api"
//	malformed Authorization header    400     Bearer realm="api", error="invalid_request"
//	malformed/unknown/revoked/expired 401     Bearer realm="api", error="invalid_token"
//	key of the wrong mode (WithMode)  401     Bearer realm="api", error="invalid_token"
//	key lacks a required scope        403     Bearer realm="api", error="insufficient_scope", scope="sessions:write"
//	key store unavailable             503     none; Retry-After: 5
//
// The four invalid keys share one body, so a response never reveals
// whether a key exists or was revoked; the error handler can still tell
// them apart (see [WithErrorHandler]). No response ever contains the key or
// an internal error's text.
//
// A header is malformed, and answered with 400 invalid_request rather than
// 401, when it is repeated, holds more than one credential ("Bearer a b",
// "Bearer a, Bearer b"), names Bearer with no key, holds control or
// non-ASCII characters or a token outside RFC 6750's b64token syntax, or is
// longer than [MaxHeaderLen] bytes: the request itself is broken, which RFC
// 6750 section 3.1 reports as invalid_request, and a client learns that
// retrying with the same header cannot work. A header with another scheme
// (Basic, Token, or a bare key without "Bearer") carries no Bearer
// credentials: RFC 6750 section 3.1 asks for a plain 401 challenge without
// an error code, and the body says how to send the key. A well-formed
// token that is not a key of the configured format is an invalid key: 401
// invalid_token.
//
// # Performance
//
// On success, Authenticate allocates twice: one context value holding the
// record, and the request copy made by [http.Request.WithContext].
// [keyward.Keys.Verify] itself does not allocate against the memory store.
package middleware
