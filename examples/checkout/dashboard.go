package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/dashboard"
)

// The dashboard's demo sign-in: HTTP Basic authentication with one shared
// password. Any user name is accepted and recorded as the operator in the
// audit log. It stands in for a real service's own operator sign-in
// (sessions, single sign-on); Basic sends the password with every request,
// readable by anyone on the way unless the server is behind TLS.

// basicRealm is the realm of the dashboard's Basic challenge.
const basicRealm = "checkout dashboard"

// Why a sign-in was refused, for the log; the client is told only that it
// must sign in.
var (
	errNoCredentials = errors.New("no Basic credentials")
	errNoUserName    = errors.New("no user name")
	errWrongPassword = errors.New("wrong password")
)

// operatorLogin checks the operators' shared password.
type operatorLogin struct {
	hash   [sha256.Size]byte // of the password, so every comparison has one length
	logger *slog.Logger
}

// authorize is the dashboard's [dashboard.AuthorizeFunc]: the request's
// Basic user name, if its password is the dashboard's.
func (l *operatorLogin) authorize(r *http.Request) (string, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", errNoCredentials
	}
	h := sha256.Sum256([]byte(pass))
	if subtle.ConstantTimeCompare(h[:], l.hash[:]) != 1 {
		return "", errWrongPassword
	}
	if user == "" {
		return "", errNoUserName // the audit needs a name
	}
	return user, nil
}

// unauthorized asks for credentials again. A wrong password is logged with
// the client's address; neither the password nor the user name is, since
// people type passwords into the wrong field.
func (l *operatorLogin) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errWrongPassword) {
		l.logger.LogAttrs(r.Context(), slog.LevelWarn, "dashboard: sign-in refused: wrong password",
			slog.String("remote_addr", r.RemoteAddr))
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="`+basicRealm+`", charset="UTF-8"`)
	writeProblem(w, http.StatusUnauthorized, "Unauthorized",
		"Sign in to the dashboard with any user name and the dashboard password.", nil)
}

// newDashboard returns the API Keys dashboard behind the demo sign-in,
// logging its audit trail to logger.
func newDashboard(keys *keyward.Keys, password string, logger *slog.Logger) (*dashboard.Handler, error) {
	login := &operatorLogin{hash: sha256.Sum256([]byte(password)), logger: logger}
	return dashboard.New(keys, login.authorize,
		dashboard.WithUnauthorized(login.unauthorized),
		dashboard.WithLogger(logger),
		dashboard.WithTitle("Checkout"),
	)
}
