// Package apikey is key material and the key record, with no I/O.
//
// A key is its product prefix, its mode and 32 random base-62 characters:
//
//	ck_live_4eC39HqLyjWDarjtT1zdp7dc
//	ck_test_9fQ1lX0bZrPq7TmN2cVd8sKe4wHyJuAo
//
// [Generate] makes one from crypto/rand with rejection sampling, so every
// character is uniform over the alphabet. [Parse] checks a raw key's format
// without a store and without allocating, so malformed input is refused
// before anything else happens. [HashOf] is what a store keeps: the SHA-256
// hash of the full key. The display prefix ("ck_live_4eC39H") is the only
// part ever kept in clear.
//
// The raw key lives only in a [Secret], which prints and marshals itself
// redacted; [Secret.Reveal] is the one way to read it.
//
// A [Record] is everything kept about a key: its ID, its owner (the
// application's account ID, see [ValidOwner]), name, display prefix, mode,
// scopes, [Metadata] (the application's own immutable key-value pairs),
// hash, timestamps, from which [Record.Status] derives active, revoked or
// expired, and the links a rotation makes between a key and its
// replacement.
//
// The product prefix defaults to "ck"; other products make their own
// [Format] with [NewFormat].
package apikey
