package dashboard

import (
	"context"
	"log/slog"

	"github.com/keyward/keyward/apikey"
)

// An Action is a change an operator made to keys.
type Action string

// The audited actions.
const (
	KeyCreated Action = "key.created" // a key was created
	KeyRevoked Action = "key.revoked" // a key was revoked
	KeyRotated Action = "key.rotated" // a key was replaced by a new one
)

// An Event reports one audited action. It never holds a raw key; its
// records have no hash either.
type Event struct {
	// Action is what was done.
	Action Action
	// Operator is the name the AuthorizeFunc gave for the request.
	Operator string
	// Key is the key created, the key revoked (with its revocation time),
	// or the new key of a rotation.
	Key apikey.Record
	// Replaced is, for KeyRotated, the old key, with the expiry the
	// rotation gave it. Its ID is always set; the rest is zero if the
	// record could not be read back after the rotation.
	Replaced apikey.Record
}

// LogValue logs the action, the operator and the keys' identities (ID,
// name, display prefix, mode), never a secret.
func (e Event) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("action", string(e.Action)),
		slog.String("operator", e.Operator),
		slog.Any("key", e.Key),
	}
	if e.Action == KeyRotated {
		attrs = append(attrs, slog.Any("replaced", e.Replaced),
			slog.Time("replaced_expires_at", e.Replaced.ExpiresAt))
	}
	return slog.GroupValue(attrs...)
}

var auditMessages = map[Action]string{
	KeyCreated: "dashboard: API key created",
	KeyRevoked: "dashboard: API key revoked",
	KeyRotated: "dashboard: API key rotated",
}

// report logs e and passes it to the audit hook.
func (h *Handler) report(ctx context.Context, e Event) {
	e.Key.Hash = apikey.Hash{}
	e.Replaced.Hash = apikey.Hash{}
	h.logger.LogAttrs(ctx, slog.LevelInfo, auditMessages[e.Action], slog.Any("audit", e))
	if h.audit != nil {
		h.audit(ctx, e)
	}
}
