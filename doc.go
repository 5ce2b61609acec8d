// Package keyward gives a Go HTTP server API keys: generate, hash, scope,
// list, rotate, revoke, and authenticate every request.
//
// Keys look like ck_live_4eC39HqLyjWDarjtT1zdp7dc: a product prefix, a mode
// (live or test) and 32 base-62 characters of cryptographic randomness. Only
// their SHA-256 hash is stored; the raw key is shown once, at creation, and
// can never be retrieved again. A short display prefix (ck_live_4eC39H) is
// kept to recognise the key. Each key carries scopes such as sessions:write.
//
// # Packages
//
//   - [github.com/keyward/keyward/apikey]: key format, generation, parsing,
//     hashing, the [apikey.Secret] that never prints itself, and the
//     [apikey.Record] kept for each key.
//   - [github.com/keyward/keyward/scope]: scopes, catalogs and scope sets.
//   - [github.com/keyward/keyward/store]: the [store.Store] interface and its
//     contract; [github.com/keyward/keyward/store/memory] and
//     [github.com/keyward/keyward/store/postgres] implement it,
//     [github.com/keyward/keyward/store/cache] puts a verification cache in
//     front of any store, and [github.com/keyward/keyward/store/storetest] is
//     the conformance suite they all pass.
//   - this package: [Keys], the lifecycle of keys, and [Owner], the
//     management of one account's keys.
//   - [github.com/keyward/keyward/middleware]: net/http middleware that
//     authenticates requests with [Keys] and checks scopes.
//   - [github.com/keyward/keyward/dashboard]: the API Keys page and its JSON
//     management API, mounted behind the application's operator sign-in.
//   - [github.com/keyward/keyward/keywardtest]: helpers for testing handlers
//     that sit behind the middleware.
//   - [github.com/keyward/keyward/problem]: the RFC 9457 problem details
//     every error response of keyward is written with.
//
// # Accounts
//
// Every key belongs to an owner: the application's own ID of the account
// (a merchant, a customer, a team) the key acts for, such as "acct_123".
// Management goes through [Keys.Owner], which acts on that account's keys
// and no other: a key ID of another account is answered exactly as an
// unknown one ([ErrNotFound]), so no answer reveals that it exists.
// Verification needs no owner: [Keys.Verify] finds any key, and the record
// it returns names the key's owner and carries its [apikey.Metadata], so a
// handler scopes its work to the calling account with no second lookup.
// An application with a single account uses [DefaultOwner].
//
// # The lifecycle
//
// [New] wraps a store. [Owner.Create] issues a key: the returned
// [apikey.Secret] is the only copy of the raw key, to show its owner once;
// with an idempotency key, a retried create creates nothing and shows no
// raw key again. [Keys.Verify] authenticates a raw key on each request.
// [Owner.Revoke] ends a key at once and for good: the very next Verify
// fails, and the record stays listed, with its revocation time, for audit;
// [Owner.RevokeAll] does it to every active key of the account.
// [Owner.Rotate] issues a replacement and lets the old key live on for an
// overlap (7 days at most by default), so a deployment can switch without
// downtime; the two records link to each other. [Owner.Update] renames a
// key, replaces its metadata, narrows its scopes or brings its expiry
// closer; it never widens scopes. [Owner.List] and [Owner.Get] read the
// records.
//
// # Errors
//
// Verify tells failures apart for logs and metrics, while a client is shown
// a single "invalid key" for all of them:
//
//	errors.Is(err, keyward.ErrInvalidKey)       // any of the four below: 401
//	errors.Is(err, keyward.ErrMalformedKey)     // not a key; no store was asked
//	errors.Is(err, keyward.ErrUnknownKey)       // well formed, but not issued here
//	errors.Is(err, keyward.ErrRevoked)          // revoked
//	errors.Is(err, keyward.ErrExpired)          // past its expiry (after rotation)
//	errors.Is(err, keyward.ErrStoreUnavailable) // the store failed: 503, never 401
//
// Any other error from Verify is unexpected and must also fail closed.
//
// The management methods of [Owner] return an [*InputError] naming the
// field at fault for bad input, [ErrNotFound], [ErrAlreadyRevoked],
// [ErrKeyExpired], [ErrReplaced], [ErrAlreadyCreated], or an error matching
// [ErrStoreUnavailable].
//
// # Last used
//
// The last-used time is the time of the most recent successful
// verification. Verify never waits on a write, and takes no lock to record
// a use: each key has a cell in memory holding its latest use, and the cells
// used since the last write are written in one batch every flush interval
// (one second by default, [WithFlushInterval]) and on [Keys.Close]. A key
// verified 10,000 times a second costs one write a second. The times reach
// the store within one interval plus one write, and are at most 1 ms older
// than the true last use (see [Keys.Flush] for the exact bound). The cells
// take about 100 bytes per key verified by the process.
//
// # Scopes
//
// Scopes are exact: sessions:write does not imply sessions:read. See package
// scope for why.
package keyward
