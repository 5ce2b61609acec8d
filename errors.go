package keyward

import (
	"errors"
	"fmt"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store"
)

// ErrInvalidKey is matched, through [errors.Is], by every error that means
// "this key does not authenticate": [ErrMalformedKey], [ErrUnknownKey],
// [ErrRevoked] and [ErrExpired]. A client-facing layer shows all of them as
// one "invalid key", so a response never reveals whether a key exists or was
// revoked; logs and metrics can still tell them apart.
var ErrInvalidKey = errors.New("keyward: invalid API key")

// The ways a key fails verification. Each matches itself and [ErrInvalidKey].
var (
	// ErrMalformedKey: the text is not a key of the configured format. The
	// error also matches the apikey error saying why, such as
	// [apikey.ErrLength]. No store was consulted.
	ErrMalformedKey error = &invalidKeyError{msg: "keyward: malformed API key"}
	// ErrUnknownKey: the key is well formed but no stored key has its hash.
	ErrUnknownKey error = &invalidKeyError{msg: "keyward: unknown API key"}
	// ErrRevoked: the key was revoked.
	ErrRevoked error = &invalidKeyError{msg: "keyward: API key revoked"}
	// ErrExpired: the key's expiry has passed, for example after rotation.
	ErrExpired error = &invalidKeyError{msg: "keyward: API key expired"}
)

// ErrCanaryRotation is returned by [Owner.Rotate] for a canary key: a
// tripwire is replaced by creating a new canary and revoking the old one,
// never by a rotation that would link the two.
var ErrCanaryRotation = errors.New("keyward: a canary key cannot be rotated; create a new canary instead")

// ErrStoreUnavailable is matched by every error that means the key store
// could not answer: it is down, timed out, or the context ended. It is never
// an invalid key: an HTTP layer reports it as 503 and fails closed. The
// error is a [*StoreError] wrapping the store's own error.
var ErrStoreUnavailable = errors.New("keyward: key store unavailable")

// ErrOverloaded is the cause, inside a [*StoreError], of a verification
// refused because every place among the lookups in flight to the store
// stayed taken (see [WithMaxLookups]): like any store failure, it matches
// [ErrStoreUnavailable], a 503 with Retry-After, and says nothing of the
// key.
var ErrOverloaded = errors.New("keyward: too many key lookups in flight to the store")

// Errors of the management methods of [Owner], re-exported from package
// store so that callers need not import it.
var (
	// ErrNotFound: the owner has no key with that ID. A key of another
	// owner gets this error too.
	ErrNotFound = store.ErrNotFound
	// ErrAlreadyRevoked: the key is revoked; revocation is final.
	ErrAlreadyRevoked = store.ErrAlreadyRevoked
	// ErrKeyExpired: the key has expired, so it cannot be rotated. (A
	// verification of an expired key fails with [ErrExpired].)
	ErrKeyExpired = store.ErrKeyExpired
	// ErrReplaced: the key is already being replaced by an active key, so
	// it cannot be rotated again until its replacement is revoked or its
	// overlap ends.
	ErrReplaced = store.ErrReplaced
	// ErrWidening: an update would give a key a scope it does not hold.
	// Scopes only narrow; create a new key to grant more. It comes inside
	// an [*InputError] for the field "scopes".
	ErrWidening = store.ErrWidening
	// ErrAlreadyCreated: a create with an idempotency key repeated an
	// earlier one; the key it created is returned, and its raw key, shown
	// once, is not shown again.
	ErrAlreadyCreated = store.ErrAlreadyCreated
	// ErrIdempotencyConflict: an idempotency key was used before to create
	// a key with other parameters. It comes inside an [*InputError] for the
	// field "idempotency_key".
	ErrIdempotencyConflict = store.ErrIdempotencyConflict
)

// ErrInvalidInput is matched by every [*InputError]: a request that names a
// bad value.
var ErrInvalidInput = errors.New("keyward: invalid input")

// An InputError reports which field of a request is invalid and why.
type InputError struct {
	// Field is the request field: "owner", "name", "mode", "scopes",
	// "metadata", "expires_at", "idempotency_key", "overlap", or, for
	// listing, "limit", "cursor", "mode" or "status".
	Field string
	// Err says what is wrong with it; it may wrap a sentinel such as
	// [scope.ErrUnknown] or [apikey.ErrInvalidMode].
	Err error
}

// Error returns "keyward: invalid <field>: <reason>".
func (e *InputError) Error() string { return fmt.Sprintf("keyward: invalid %s: %v", e.Field, e.Err) }

// Unwrap returns the reason.
func (e *InputError) Unwrap() error { return e.Err }

// Is matches [ErrInvalidInput].
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

// A StoreError reports that the key store failed during an operation. It
// matches [ErrStoreUnavailable]. Its text carries the store's error and is
// for logs only, never for clients.
type StoreError struct {
	// Op is the lifecycle operation: "verify", "create", "get", "list",
	// "update", "rotate", "revoke", "revoke all" or "record uses".
	Op string
	// Err is the store's error.
	Err error
}

// Error returns the operation and the store's error.
func (e *StoreError) Error() string {
	return fmt.Sprintf("keyward: key store unavailable during %s: %v", e.Op, e.Err)
}

// Unwrap returns the store's error.
func (e *StoreError) Unwrap() error { return e.Err }

// Is matches [ErrStoreUnavailable].
func (e *StoreError) Is(target error) bool { return target == ErrStoreUnavailable }

// invalidKeyError is the type of the invalid-key sentinels. They are
// package-level values, so a failed verification allocates nothing.
type invalidKeyError struct {
	msg   string
	kind  error // ErrMalformedKey for the malformed variants; nil otherwise
	cause error // the apikey error, for malformed variants
}

func (e *invalidKeyError) Error() string { return e.msg }

func (e *invalidKeyError) Is(target error) bool {
	return target == ErrInvalidKey || e.kind != nil && target == e.kind
}

func (e *invalidKeyError) Unwrap() error { return e.cause }

// malformed holds one ErrMalformedKey variant per apikey format error.
var malformed = func() map[error]error {
	m := map[error]error{}
	for _, cause := range []error{apikey.ErrPrefix, apikey.ErrMode, apikey.ErrLength, apikey.ErrAlphabet, apikey.ErrChecksum} {
		m[cause] = &invalidKeyError{
			msg:   ErrMalformedKey.Error() + ": " + cause.Error(),
			kind:  ErrMalformedKey,
			cause: cause,
		}
	}
	return m
}()

// malformedKey returns the ErrMalformedKey variant for a Parse error.
func malformedKey(parseErr error) error {
	if e, ok := malformed[parseErr]; ok {
		return e
	}
	return ErrMalformedKey
}

// storeError classifies a store error: the answers of package store's
// contract pass through, anything else becomes a *StoreError.
func storeError(op string, err error) error {
	if err == nil || store.IsAnswer(err) {
		return err
	}
	return &StoreError{Op: op, Err: err}
}
