package dashboard

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/problem"
)

// invalidFieldType is the problem type of a request with an invalid field;
// it points to the package documentation's "Invalid field" section.
const invalidFieldType = "https://pkg.go.dev/github.com/keyward/keyward/dashboard#hdr-Invalid_field"

// notFound is the answer to a key ID the operator's account does not
// have: unknown, not a key ID, or another account's. It never depends on
// which.
const notFound = "No key has this ID."

// fail answers an error in the client's format. msg is shown to the client
// and must not carry internal details.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if wantsJSON(r) {
		problem.Write(w, problem.Problem{Status: status, Detail: msg})
		return
	}
	h.errorPage(w, r, status, msg)
}

func (h *Handler) defaultUnauthorized(w http.ResponseWriter, r *http.Request, _ error) {
	h.fail(w, r, http.StatusUnauthorized, "Operator sign-in required.")
}

// forbid answers a change the operator's role does not allow: 403, with a
// message that says what the role may do. It is logged, with the
// operator.
func (h *Handler) forbid(w http.ResponseWriter, r *http.Request, msg string) {
	h.logRefusal(r)
	h.fail(w, r, http.StatusForbidden, msg)
}

// logRefusal logs a change refused to the operator's role.
func (h *Handler) logRefusal(r *http.Request) {
	h.logger.LogAttrs(r.Context(), slog.LevelWarn, "dashboard: change refused to the operator's role",
		slog.Any("operator", operator(r)), slog.String("method", r.Method), slog.String("path", r.URL.Path))
}

// failErr answers the error of a lifecycle call: a missing key is 404; a
// revoked, expired or already replaced one 409, as is the rotation of a
// canary; bad input 400 naming the field (422 for a reused idempotency
// key); a store failure 503; anything else is 500. Store failures are
// logged; their text never reaches the client.
func (h *Handler) failErr(w http.ResponseWriter, r *http.Request, op string, err error) {
	var in *keyward.InputError
	switch {
	case errors.As(err, &in):
		h.failField(w, r, in.Field, in.Err)
	case errors.Is(err, keyward.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, notFound)
	case errors.Is(err, keyward.ErrAlreadyRevoked):
		h.fail(w, r, http.StatusConflict, "The key is revoked; revocation is final.")
	case errors.Is(err, keyward.ErrKeyExpired):
		h.fail(w, r, http.StatusConflict, "The key has expired, so it cannot be rolled; create a new key instead.")
	case errors.Is(err, keyward.ErrReplaced):
		h.fail(w, r, http.StatusConflict, "The key is already being replaced by a newer key; "+
			"to roll it again, revoke that key first.")
	case errors.Is(err, keyward.ErrCanaryRotation):
		h.fail(w, r, http.StatusConflict, "The key is a canary, a tripwire, so it cannot be rolled; "+
			"to replace it, create a new canary and revoke this one.")
	case errors.Is(err, keyward.ErrStoreUnavailable):
		h.logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: key store unavailable",
			slog.String("op", op), slog.Any("operator", operator(r)), slog.Any("err", err))
		h.fail(w, r, http.StatusServiceUnavailable, "The key store is unavailable. Nothing was changed; try again.")
	default:
		h.logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: unexpected error",
			slog.String("op", op), slog.Any("operator", operator(r)), slog.Any("err", err))
		h.fail(w, r, http.StatusInternalServerError, "Something went wrong. Nothing was changed; try again.")
	}
}

// failField answers a request with an invalid field: 400, or 422 for an
// idempotency key reused with other parameters (the status of the IETF
// draft on the Idempotency-Key header).
func (h *Handler) failField(w http.ResponseWriter, r *http.Request, field string, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, keyward.ErrIdempotencyConflict) {
		status = http.StatusUnprocessableEntity
	}
	detail := field + ": " + reason(err)
	if wantsJSON(r) {
		problem.Write(w, problem.Problem{
			Type:       invalidFieldType,
			Title:      "Invalid field",
			Status:     status,
			Detail:     detail,
			Extensions: map[string]any{"field": field},
		})
		return
	}
	h.errorPage(w, r, status, detail)
}

// reason says what is wrong with a field, for the client: the reason
// keyward or the decoder gave, which describes the input only. The
// field names the policy already: its reasons say which limit is at
// fault.
func reason(err error) string {
	if err == nil {
		return "is invalid"
	}
	msg := strings.TrimPrefix(err.Error(), "apikey: ")
	if errors.Is(err, apikey.ErrInvalidPolicy) {
		msg = strings.TrimPrefix(msg, strings.TrimPrefix(apikey.ErrInvalidPolicy.Error(), "apikey: ")+": ")
	}
	return msg
}

// sentence makes a reason a sentence: a capital first, a full stop last
// unless it ends with one, or with a question mark.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "?") {
		msg += "."
	}
	return msg
}

// formMessage is the message shown next to a form field.
func formMessage(field string, err error) string {
	switch field {
	case "mode":
		return "Choose Live or Test."
	case "overlap":
		return "Choose when the current key stops working."
	case "idempotency_key":
		if errors.Is(err, keyward.ErrIdempotencyConflict) {
			return "This form was already used to create a key with other values. Check the values, then submit again to create a new key."
		}
	}
	return sentence(reason(err))
}

// writeJSON writes v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here: every value sent is a plain
		// struct of strings, times, modes, scope sets and metadata.
		problem.Write(w, problem.Problem{Status: http.StatusInternalServerError,
			Detail: "Something went wrong; try again."})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
