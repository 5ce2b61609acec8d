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
// [HasScope], and the client's address with [ClientAddrFrom]. Handler
// tests put a record in a context with [NewContext], or issue a real key
// with [github.com/keyward/keyward/keywardtest].
//
// # Policies
//
// A key may carry a policy ([apikey.Policy]): the client networks it works
// from, a rate limit and a quota. Authenticate enforces it after the key
// is verified, before the scopes of [RequireScopes]: first the networks,
// then the limits. A key without a policy costs nothing more.
//
// Networks are always enforced, against the client's address: that of
// [http.Request.RemoteAddr], or, behind reverse proxies named by
// [WithTrustedProxies], the one their forwarding headers give, read right
// to left past the trusted proxies only. Without that option, Forwarded
// and X-Forwarded-For are ignored: any client can send them. When the
// address cannot be determined (malformed headers, "unknown"), a key that
// lists networks is refused: it fails closed.
//
// Rate limits and quotas are enforced by a [limit.Limiter] given with
// [WithLimiter], such as [limit.Memory]; responses carry the RateLimit and
// RateLimit-Policy fields of draft-ietf-httpapi-ratelimit-headers-11. When
// the limiter fails, requests are let through by default, or refused with
// 503 (see [WithLimiterFailure] for the argument).
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
//	client outside the key's networks 403     none
//	key over its rate limit or quota  429     none; Retry-After, RateLimit, RateLimit-Policy
//	key lacks a required scope        403     Bearer realm="api", error="insufficient_scope", scope="sessions:write"
//	key store unavailable             503     none; Retry-After: 5
//	limiter unavailable (limit.Refuse)      503     none; Retry-After: 5
//
// The four invalid keys share one body, so a response never reveals
// whether a key exists or was revoked; the error handler can still tell
// them apart (see [WithErrorHandler]). No response ever contains the key or
// an internal error's text, and a 403 for networks names neither the
// client's address nor the key's networks.
//
// # Metrics and hooks
//
// Every refusal of a key that verified (its mode, its networks, its
// limits, a missing scope) is counted against the key with
// [keyward.Keys.CountRefusal]: in its usage, by reason, and by the
// lifecycle's observer, such as the OpenTelemetry adapter of
// [github.com/keyward/keyward/keywardotel]. For logs or metrics of your
// own, [WithErrorHandler] sees every refusal and [WithSuccessHook] every
// request let through.
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
// A key without a policy adds nothing, and a key with networks only the
// parsing of an address; the rate-limit fields of a key with limits take
// two more allocations, besides what its limiter costs ([limit.Memory]
// allocates nothing for a key it tracks).
package middleware
