package keyward

import (
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
)

// A Verified is a key that passed verification, as [Keys.VerifyFrom]
// returns it: a read-only view of the key's record as the store answered,
// shared with the store rather than copied, so that a server carries it
// through a request at the cost of two words. Nothing reached through it
// changes the stored record: its methods return copies, or values that
// are themselves read-only ([scope.Set], [apikey.Metadata],
// [apikey.Policy]).
//
// The zero Verified is no key ([Verified.IsZero]); its methods return
// zero values.
type Verified struct {
	rec  *apikey.Record // nil for the zero Verified; never modified
	used int64          // Unix microseconds of the verification
}

// IsZero reports whether v is the zero Verified: no key.
func (v Verified) IsZero() bool { return v.rec == nil }

// Record returns a copy of the key's record, whose LastUsedAt is the time
// of this verification.
func (v Verified) Record() apikey.Record {
	if v.rec == nil {
		return apikey.Record{}
	}
	rec := *v.rec
	if rec.LastUsedAt.IsZero() || v.used > rec.LastUsedAt.UnixMicro() {
		rec.LastUsedAt = time.UnixMicro(v.used).UTC()
	}
	return rec
}

// ID returns the key's ID, or the nil UUID for the zero Verified.
func (v Verified) ID() uuid.UUID {
	if v.rec == nil {
		return uuid.Nil
	}
	return v.rec.ID
}

// Owner returns the account the key belongs to: scope everything the
// request reads or changes to it.
func (v Verified) Owner() string {
	if v.rec == nil {
		return ""
	}
	return v.rec.Owner
}

// Mode returns the key's mode.
func (v Verified) Mode() apikey.Mode {
	if v.rec == nil {
		return 0
	}
	return v.rec.Mode
}

// Scopes returns the scopes the key holds.
func (v Verified) Scopes() scope.Set {
	if v.rec == nil {
		return scope.Set{}
	}
	return v.rec.Scopes
}

// Metadata returns the application's own pairs on the key.
func (v Verified) Metadata() apikey.Metadata {
	if v.rec == nil {
		return apikey.Metadata{}
	}
	return v.rec.Metadata
}

// Policy returns the key's policy (rate, quota, networks), or nil. It is
// read-only: records share it.
func (v Verified) Policy() *apikey.Policy {
	if v.rec == nil {
		return nil
	}
	return v.rec.Policy
}

// LogValue logs the key as [apikey.Record.LogValue] does: its identity,
// never its hash nor its metadata.
func (v Verified) LogValue() slog.Value {
	if v.rec == nil {
		return slog.GroupValue()
	}
	return v.rec.LogValue()
}
