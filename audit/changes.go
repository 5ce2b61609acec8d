package audit

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
)

// These build the events of the changes a store makes, so that every store
// describes a change in the same words. Each takes the record as the
// change left it, and the actor and time of the change.

// CreatedEvent is the event of a new key: the fields it was created with.
func CreatedEvent(rec apikey.Record, actor Actor) Event {
	ch := []Change{
		{Field: FieldName, To: rec.Name},
		{Field: FieldMode, To: rec.Mode.String()},
		{Field: FieldScopes, To: rec.Scopes.String()},
	}
	if rec.Metadata.Len() > 0 {
		ch = append(ch, Change{Field: FieldMetadata})
	}
	if !rec.ExpiresAt.IsZero() {
		ch = append(ch, Change{Field: FieldExpiresAt, To: timeText(rec.ExpiresAt)})
	}
	if !rec.Policy.IsZero() {
		ch = append(ch, Change{Field: FieldPolicy, To: policyText(rec.Policy)})
	}
	if rec.Canary {
		ch = append(ch, Change{Field: FieldCanary, To: "true"})
	}
	if rec.Replaces != uuid.Nil {
		ch = append(ch, Change{Field: FieldReplaces, To: rec.Replaces.String()})
	}
	return event(Created, rec, rec.CreatedAt, actor, ch)
}

// UpdatedEvent is the event of an update at time at, from before to
// after: the fields that differ. It reports false if nothing differs: an
// update that changes nothing has no entry.
func UpdatedEvent(before, after apikey.Record, at time.Time, actor Actor) (Event, bool) {
	var ch []Change
	if before.Name != after.Name {
		ch = append(ch, Change{Field: FieldName, From: before.Name, To: after.Name})
	}
	if !before.Scopes.Equal(after.Scopes) {
		ch = append(ch, Change{Field: FieldScopes, From: before.Scopes.String(), To: after.Scopes.String()})
	}
	if !before.Metadata.Equal(after.Metadata) {
		ch = append(ch, Change{Field: FieldMetadata})
	}
	if !before.ExpiresAt.Equal(after.ExpiresAt) {
		ch = append(ch, Change{Field: FieldExpiresAt, From: timeText(before.ExpiresAt), To: timeText(after.ExpiresAt)})
	}
	if p, q := policyText(before.Policy), policyText(after.Policy); p != q {
		ch = append(ch, Change{Field: FieldPolicy, From: p, To: q})
	}
	if len(ch) == 0 {
		return Event{}, false
	}
	return event(Updated, after, at, actor, ch), true
}

// RotatedEvent is the event of the old key of a rotation, before and
// after it: its replacement, and its expiry if the overlap moved it. The
// replacement gets a [CreatedEvent] (whose changes name the key it
// replaces).
func RotatedEvent(before, after apikey.Record, at time.Time, actor Actor) Event {
	ch := []Change{{Field: FieldReplacedBy, From: idText(before.ReplacedBy), To: idText(after.ReplacedBy)}}
	if !before.ExpiresAt.Equal(after.ExpiresAt) {
		ch = append(ch, Change{Field: FieldExpiresAt, From: timeText(before.ExpiresAt), To: timeText(after.ExpiresAt)})
	}
	return event(Rotated, after, at, actor, ch)
}

// RevokedEvent is the event of a revocation of rec, as revoked; kind is
// Revoked or RevokedAll.
func RevokedEvent(kind Kind, rec apikey.Record, actor Actor) Event {
	e := event(kind, rec, rec.RevokedAt, actor, []Change{{Field: FieldRevokedAt, To: timeText(rec.RevokedAt)}})
	e.Reason = rec.RevokedReason
	return e
}

// ExposedEvent is the event of an exposure report at time at, with the
// record before and after it: the exposure, and the revocation if the
// report revoked the key.
func ExposedEvent(before, after apikey.Record, at time.Time, actor Actor) Event {
	var ch []Change
	if before.Exposure == nil && after.Exposure != nil {
		x := after.Exposure.Source
		if after.Exposure.URL != "" {
			x += " " + after.Exposure.URL
		}
		ch = append(ch, Change{Field: FieldExposure, To: x})
	}
	e := event(Exposed, after, at, actor, ch)
	if !before.Revoked() && after.Revoked() {
		e.Changes = append(e.Changes, Change{Field: FieldRevokedAt, To: timeText(after.RevokedAt)})
		e.Reason = after.RevokedReason
	}
	return e
}

func event(kind Kind, rec apikey.Record, at time.Time, actor Actor, ch []Change) Event {
	return Event{Kind: kind, Owner: rec.Owner, KeyID: rec.ID, Prefix: rec.Prefix,
		At: at.UTC().Truncate(time.Microsecond), Actor: actor, Changes: ch}
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

func idText(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

func policyText(p *apikey.Policy) string {
	if p.IsZero() {
		return ""
	}
	b, err := json.Marshal(p)
	if err != nil { // a validated policy marshals
		return "unprintable"
	}
	return string(b)
}
