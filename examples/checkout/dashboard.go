package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/problem"
)

// The dashboard's demo sign-in: HTTP Basic authentication with one shared
// password, where the user name says who signs in: one of demoUsers, each
// an operator of one merchant with one role. It stands in for a real
// service's own operator sign-in (sessions, single sign-on); Basic sends
// the password with every request, readable by anyone on the way unless
// the server is behind TLS.

// basicRealm is the realm of the dashboard's Basic challenge.
const basicRealm = "checkout dashboard"

// Why a sign-in was refused, for the log; the client is told only that it
// must sign in.
var (
	errNoCredentials = errors.New("no Basic credentials")
	errWrongPassword = errors.New("wrong password")
	errUnknownUser   = errors.New("unknown user name")
)

// operatorLogin checks the operators' shared password and their user
// names.
type operatorLogin struct {
	hash   [sha256.Size]byte // of the password, so every comparison has one length
	users  map[string]demoUser
	logger *slog.Logger
}

// newOperatorLogin returns the sign-in of users with password.
func newOperatorLogin(password string, users []demoUser, logger *slog.Logger) *operatorLogin {
	l := &operatorLogin{hash: sha256.Sum256([]byte(password)), users: make(map[string]demoUser, len(users)), logger: logger}
	for _, u := range users {
		l.users[u.name] = u
	}
	return l
}

// authorize is the dashboard's [dashboard.AuthorizeFunc]: the operator of
// the request's Basic user name, if its password is the dashboard's. The
// password is checked first, in constant time, whatever the user name; an
// unknown or empty user name is refused.
func (l *operatorLogin) authorize(r *http.Request) (dashboard.Operator, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return dashboard.Operator{}, errNoCredentials
	}
	h := sha256.Sum256([]byte(pass))
	if subtle.ConstantTimeCompare(h[:], l.hash[:]) != 1 {
		return dashboard.Operator{}, errWrongPassword
	}
	u, ok := l.users[user]
	if !ok {
		return dashboard.Operator{}, errUnknownUser
	}
	return dashboard.Operator{Name: u.name, Owner: u.merchant, Role: u.role}, nil
}

// unauthorized asks for credentials again. A wrong password or an unknown
// user name is logged with the client's address; neither the password nor
// the user name is, since people type passwords into the wrong field.
func (l *operatorLogin) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errWrongPassword):
		l.logger.LogAttrs(r.Context(), slog.LevelWarn, "dashboard: sign-in refused: wrong password",
			slog.String("remote_addr", r.RemoteAddr))
	case errors.Is(err, errUnknownUser):
		l.logger.LogAttrs(r.Context(), slog.LevelWarn, "dashboard: sign-in refused: unknown user name",
			slog.String("remote_addr", r.RemoteAddr))
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="`+basicRealm+`", charset="UTF-8"`)
	problem.Write(w, problem.Problem{Status: http.StatusUnauthorized,
		Detail: "Sign in to the dashboard with a demo user name, such as ada, and the dashboard password."})
}

// newDashboard returns the API Keys dashboard behind the demo sign-in of
// users, logging what it refuses to logger. The changes operators make
// are the lifecycle's to log and keep in the audit trail, with the
// operator as their actor.
func newDashboard(keys *keyward.Keys, password string, users []demoUser, logger *slog.Logger, limiter limit.Limiter) (*dashboard.Handler, error) {
	login := newOperatorLogin(password, users, logger)
	return dashboard.New(keys, login.authorize,
		dashboard.WithUnauthorized(login.unauthorized),
		dashboard.WithLogger(logger),
		dashboard.WithTitle("Checkout"),
		dashboard.WithLimiter(limiter), // shows each key's usage against its limits
	)
}
