package dashboard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
)

// An AuthorizeFunc says who a dashboard request comes from: the
// [Operator], or an error to refuse the request. It is the mounting
// application's own check: a session cookie, single sign-on, mutual TLS,
// HTTP Basic authentication, or a middleware that put the user into the
// request's context.
//
// An operator without a name, an owner or a known role is a refusal too
// ([ErrNoOperator]), so that a check that forgot to fill one in fails
// closed.
type AuthorizeFunc func(r *http.Request) (Operator, error)

// An Operator is who a dashboard request comes from, as the
// [AuthorizeFunc] says.
type Operator struct {
	// Name names the operator in the audit trail, such as an email
	// address: the ID of the actor of every change the operator makes
	// (an [audit.Actor] of type [audit.TypeOperator]). It must be a valid
	// actor ID: printable UTF-8, at most [audit.MaxActorIDLen] bytes.
	Name string
	// Owner is the account whose keys the operator manages: an owner ID,
	// as [apikey.ValidOwner] accepts. The dashboard shows and touches no
	// other account's keys: another account's key ID gets the same 404 as
	// an ID that does not exist.
	Owner string
	// Role is what the operator may do with the account's keys.
	Role Role
}

// ErrNoOperator is the error passed to the unauthorized handler when the
// [AuthorizeFunc] returned no error but an operator that is not valid: no
// name (or one that cannot name an actor), an invalid owner, or an
// unknown role.
var ErrNoOperator = errors.New("dashboard: the authorization check named no valid operator")

// check refuses an operator the dashboard cannot act for.
func (op Operator) check() error {
	switch {
	case op.Name == "":
		return fmt.Errorf("%w: no name", ErrNoOperator)
	case !op.Role.Valid():
		return fmt.Errorf("%w: unknown role %q", ErrNoOperator, op.Role)
	}
	if err := op.actor().Validate(); err != nil {
		return fmt.Errorf("%w: the name cannot name the actor of a change: %v", ErrNoOperator, err)
	}
	if err := apikey.ValidOwner(op.Owner); err != nil {
		return fmt.Errorf("%w: %v", ErrNoOperator, err)
	}
	return nil
}

// actor is the operator as the actor of the changes they make.
func (op Operator) actor() audit.Actor {
	return audit.Actor{Type: audit.TypeOperator, ID: op.Name}
}

// A Role is what an operator may do with their account's keys. Each role
// may do everything the one before it may.
type Role string

// The roles.
const (
	// Viewer reads: the key list, each key's page and the JSON API's
	// reads. It changes nothing.
	Viewer Role = "viewer"
	// Developer manages test keys: as Viewer, and creates, edits, rolls
	// and revokes keys of test mode. Live keys it only reads.
	Developer Role = "developer"
	// Admin manages every key of the account: live keys too, and revokes
	// all of them at once.
	Admin Role = "admin"
)

// Valid reports whether r is Viewer, Developer or Admin.
func (r Role) Valid() bool { return r == Viewer || r == Developer || r == Admin }

// CanChange reports whether r may create, edit, roll and revoke keys of
// mode m.
func (r Role) CanChange(m apikey.Mode) bool {
	switch r {
	case Admin:
		return m.Valid()
	case Developer:
		return m == apikey.Test
	}
	return false
}

// CanRevokeAll reports whether r may revoke all the account's keys at
// once.
func (r Role) CanRevokeAll() bool { return r == Admin }

// LogValue logs the operator's name, account and role.
func (op Operator) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", op.Name),
		slog.String("owner", op.Owner),
		slog.String("role", string(op.Role)),
	)
}

// canCreate reports whether r may create keys of some mode.
func (r Role) canCreate() bool { return r.CanChange(apikey.Test) || r.CanChange(apikey.Live) }

// refusal says why r may not change keys of mode m, for the 403 answer.
// Its text depends on the role and the mode only.
func (r Role) refusal(m apikey.Mode) string {
	if !r.canCreate() {
		return "Your role, " + string(r) + ", is read-only: it cannot change keys."
	}
	return "Your role, " + string(r) + ", manages " + modesOf(r) + " keys only; " + m.String() + " keys need the admin role."
}

// modesOf names the modes whose keys r may change.
func modesOf(r Role) string {
	switch {
	case r.CanChange(apikey.Live) && r.CanChange(apikey.Test):
		return "live and test"
	case r.CanChange(apikey.Test):
		return "test"
	case r.CanChange(apikey.Live):
		return "live"
	}
	return "no"
}

// refusalAll says why r may not revoke all keys.
func (r Role) refusalAll() string {
	return "Your role, " + string(r) + ", cannot revoke all keys at once; that needs the admin role."
}
