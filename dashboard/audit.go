package dashboard

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/keyward/keyward/apikey"
)

// An Action is a change an operator made to keys.
type Action string

// The audited actions.
const (
	KeyCreated     Action = "key.created"      // a key was created
	KeyUpdated     Action = "key.updated"      // a key's name, scopes, metadata, expiry or limits changed
	KeyRotated     Action = "key.rotated"      // a key was replaced by a new one
	KeyRevoked     Action = "key.revoked"      // a key was revoked
	AllKeysRevoked Action = "keys.revoked_all" // every active key of the account was revoked
)

// An Event reports one audited action. It never holds a raw key; its
// records have no hash either. Records carry the keys' metadata, which the
// log line leaves out (it may be personal data): the hook decides what to
// keep.
type Event struct {
	// Action is what was done.
	Action Action
	// Operator is who did it, as the AuthorizeFunc named them.
	Operator Operator
	// Owner is the account whose keys changed: the operator's.
	Owner string
	// Key is the key created, updated (as updated), revoked (with its
	// revocation time), or the new key of a rotation. It is zero for
	// AllKeysRevoked.
	Key apikey.Record
	// Replaced is, for KeyRotated, the old key, with the expiry the
	// rotation gave it. Its ID is always set; the rest is zero if the
	// record could not be read back after the rotation.
	Replaced apikey.Record
	// Previous is, for KeyUpdated, the key as it was read just before the
	// update.
	Previous apikey.Record
	// Changed names, for KeyUpdated, what the update changed: any of
	// "name", "scopes", "metadata", "expires_at" and "policy" (the
	// limits; Key.Policy is the new one, Previous.Policy the old).
	Changed []string
	// Keys are, for AllKeysRevoked, the keys revoked, newest first; empty
	// if the account had no active key.
	Keys []apikey.Record
	// Reason is, for KeyRevoked and AllKeysRevoked, why the operator
	// revoked, as the revoked records keep it (RevokedReason): trimmed,
	// and empty if no reason was given.
	Reason string
}

// LogValue logs the action, the operator, the account, the keys'
// identities (ID, owner, name, display prefix, mode), whether a created
// key is a canary, the limits of a created key and those an update
// changed (before and after), and the reason of a revocation; never a
// secret, a hash or metadata.
func (e Event) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("action", string(e.Action)),
		slog.Any("operator", e.Operator),
		slog.String("owner", e.Owner),
	}
	switch e.Action {
	case AllKeysRevoked:
		ids := make([]string, len(e.Keys))
		for i, k := range e.Keys {
			ids[i] = k.ID.String()
		}
		attrs = append(attrs, slog.Int("count", len(e.Keys)), slog.Any("ids", ids))
		if e.Reason != "" {
			attrs = append(attrs, slog.String("reason", e.Reason))
		}
	case KeyRotated:
		attrs = append(attrs, slog.Any("key", e.Key), slog.Any("replaced", e.Replaced),
			slog.Time("replaced_expires_at", e.Replaced.ExpiresAt))
	case KeyUpdated:
		attrs = append(attrs, slog.Any("key", e.Key), slog.Any("changed", e.Changed))
		if e.Previous.Name != e.Key.Name {
			attrs = append(attrs, slog.String("previous_name", e.Previous.Name))
		}
		if !samePolicy(e.Previous.Policy, e.Key.Policy) {
			attrs = append(attrs, slog.String("policy", policyText(e.Key.Policy)),
				slog.String("previous_policy", policyText(e.Previous.Policy)))
		}
	default:
		attrs = append(attrs, slog.Any("key", e.Key))
		if e.Key.Canary {
			attrs = append(attrs, slog.Bool("canary", true))
		}
		if e.Action == KeyCreated && e.Key.Policy != nil {
			attrs = append(attrs, slog.String("policy", policyText(e.Key.Policy)))
		}
		if e.Reason != "" {
			attrs = append(attrs, slog.String("reason", e.Reason))
		}
	}
	return slog.GroupValue(attrs...)
}

var auditMessages = map[Action]string{
	KeyCreated:     "dashboard: API key created",
	KeyUpdated:     "dashboard: API key updated",
	KeyRotated:     "dashboard: API key rotated",
	KeyRevoked:     "dashboard: API key revoked",
	AllKeysRevoked: "dashboard: all API keys revoked",
}

// report logs e, done by the operator of r, and passes it to the audit
// hook.
func (h *Handler) report(r *http.Request, e Event) {
	e.Operator = operator(r)
	e.Owner = e.Operator.Owner
	e.Key.Hash = apikey.Hash{}
	e.Replaced.Hash = apikey.Hash{}
	e.Previous.Hash = apikey.Hash{}
	if e.Keys != nil {
		keys := make([]apikey.Record, len(e.Keys))
		for i, k := range e.Keys {
			k.Hash = apikey.Hash{}
			keys[i] = k
		}
		e.Keys = keys
	}
	ctx := r.Context()
	h.logger.LogAttrs(ctx, slog.LevelInfo, auditMessages[e.Action], slog.Any("audit", e))
	if h.audit != nil {
		h.audit(ctx, e)
	}
}

// changes names what differs between a key before and after an update.
func changes(before, after apikey.Record) []string {
	var changed []string
	if before.Name != after.Name {
		changed = append(changed, "name")
	}
	if !before.Scopes.Equal(after.Scopes) {
		changed = append(changed, "scopes")
	}
	if !before.Metadata.Equal(after.Metadata) {
		changed = append(changed, "metadata")
	}
	if !before.ExpiresAt.Equal(after.ExpiresAt) {
		changed = append(changed, "expires_at")
	}
	if !samePolicy(before.Policy, after.Policy) {
		changed = append(changed, "policy")
	}
	return changed
}

// policyText writes a policy for the log, in its JSON form; "none" for
// no limits.
func policyText(p *apikey.Policy) string {
	if p.IsZero() {
		return "none"
	}
	b, err := json.Marshal(p)
	if err != nil { // a policy the lifecycle validated marshals
		return "unprintable"
	}
	return string(b)
}
