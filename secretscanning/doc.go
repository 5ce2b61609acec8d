// Package secretscanning revokes the keys GitHub finds in public: it is
// the endpoint of GitHub's secret scanning partner program.
//
// GitHub scans public repositories, gists, issues, pull requests,
// discussions and npm packages for the token formats of its partners.
// When it finds text matching a partner's pattern, it POSTs the matches to
// the partner's endpoint, signed with one of its keys. [Handler] is that
// endpoint for keyward: it checks GitHub's signature, reports each token
// with [keyward.Keys.ReportExposure], which marks a key of the store
// exposed and revokes it (unless the exposure policy only marks keys), and
// answers with GitHub's feedback format: which tokens were real keys.
//
//	keys, err := keyward.New(st)
//	…
//	alerts, err := secretscanning.NewHandler(keys)
//	…
//	mux.Handle("POST /github/secret-scanning", alerts)
//
// The route must be reachable from the internet without any other
// authentication: GitHub's signature is the authentication.
//
// # Registering with GitHub
//
// Email secret-scanning@github.com to join the program, and send, for
// each key format:
//
//   - a unique, human-readable name of the secret type, such as
//     "acme_api_key": GitHub sends it back as each match's type;
//   - the regular expression that finds your keys, which
//     [apikey.Format.Pattern] writes, such as
//     ck_(?:live|test)_[0-9A-Za-z]{32} for [apikey.Default] (pass the
//     format of [keyward.Keys.Format]);
//   - a test account, so that GitHub can create sample keys;
//   - the URL of the endpoint, such as
//     https://api.example.com/github/secret-scanning. One endpoint serves
//     every secret type.
//
// To receive feedback on false positives, which this handler always sends,
// ask GitHub to take part; GitHub then waits 30 seconds for an answer.
//
// # The contract
//
// GitHub's request is a POST whose body is a JSON array of matches:
//
//	[{"token":"ck_live_…","type":"acme_api_key","url":"https://github.com/octo/repo/blob/…/config.yml","source":"content"}]
//
// token is the text that matched, type the name registered for the
// pattern, url where it was found (possibly empty), source what it was
// found in ("content", "commit", "issue_comment", "npm", …). Members GitHub
// may add later are ignored. The request carries two headers:
// [HeaderKeyID], the key_identifier of the key that signed it, and
// [HeaderSignature], the base64 ASN.1 ECDSA signature of the SHA-256 of the
// raw body (ECDSA-NIST-P256V1-SHA256). GitHub publishes its keys at
// [DefaultKeysURL] as PEM public keys with their key_identifier and
// is_current; [GitHubKeys] fetches them, [StaticKeys] holds a fixed set.
//
// Each distinct token is reported once, with the Exposure Source
// [DefaultSource] (see [WithSource]) and the match's url (left out if
// longer than an Exposure takes). The 200 answer is a JSON array with one
// [Feedback] per distinct token and type, in the order of their first
// match:
//
//	[{"token_hash":"9f86d0…","token_type":"acme_api_key","label":"true_positive"}]
//
// label is "true_positive" for a key of the store (Known), and
// "false_positive" for anything else. The token is sent in hashed form
// only: the lowercase hexadecimal SHA-256 of the raw token, which is also
// the key's [apikey.Hash] in the store.
//
// The responses, by case; every error body is application/problem+json
// (RFC 9457), written by package [github.com/keyward/keyward/problem]:
//
//	case                                                  status
//	method other than POST                                405, Allow: POST
//	signature headers missing, repeated or malformed,
//	  unknown key identifier, signature not verifying     401
//	body over WithMaxBodyBytes (default 1 MiB)            413
//	signed, over WithMaxMatches matches (default 1000)    413
//	signed, not a JSON array of matches with a non-empty
//	  string token and type, or data after the array      400
//	GitHub's public keys cannot be obtained               503, Retry-After: 5
//	a report failed: key store unavailable                503, Retry-After: 5
//	a report failed otherwise                             500
//	every token reported                                  200, the feedback
//
// An empty array is a valid alert, answered with an empty array. When a
// report fails, the other tokens are still reported, and the answer holds
// no feedback but a status that asks for the alert again (GitHub's
// documentation does not say when it redelivers). Sending it again is
// safe: the tokens already reported are answered from the store as
// before, since reports are idempotent. A batch over the match limit is refused whole, with 413 like
// an oversized body, rather than reported in part: raise the limit if
// GitHub's batches outgrow it.
//
// # Security
//
//   - The signature is checked before anything else is done with the
//     body: over the exact bytes received, before the JSON is parsed,
//     before any store is consulted. An unsigned, forged or altered
//     request is answered 401 and changes nothing; it cannot revoke a key,
//     nor learn whether a token is a key. The 401 is the same whatever
//     check failed.
//   - The body is read up to a limit, and the number of matches is capped,
//     before any work proportional to them.
//   - Key identifiers come from unauthenticated requests, so an unknown
//     identifier cannot make the handler hammer GitHub: [GitHubKeys]
//     fetches at most once per refresh interval (one minute by default),
//     and concurrent lookups share one fetch.
//   - No raw token is ever echoed in a response, logged, or put in an
//     error: feedback carries the token's SHA-256, log lines carry counts
//     and the first 12 hexadecimal digits of that hash at most, and an
//     error a Reporter returns is logged with the token cut out.
//   - Reports are idempotent, so a redelivered alert, and a token
//     duplicated within one alert, revoke once and answer the same.
//   - Which tokens were real keys is what the feedback tells GitHub, by
//     design; only a request GitHub signed gets that far, so the time a
//     lookup takes tells nobody else anything.
package secretscanning
