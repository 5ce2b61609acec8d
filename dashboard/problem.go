package dashboard

import (
	"encoding/json"
	"net/http"
)

// invalidFieldType is the problem type of a request with an invalid field;
// it points to the package documentation's "Invalid field" section.
const invalidFieldType = "https://pkg.go.dev/github.com/keyward/keyward/dashboard#hdr-Invalid_field"

// A problem is an RFC 9457 problem details object.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the invalid request field, for invalidFieldType.
	Field string `json:"field,omitempty"`
}

// writeProblem writes p as application/problem+json. A problem without a
// type is "about:blank", titled with the status text.
func writeProblem(w http.ResponseWriter, p problem) {
	if p.Type == "" {
		p.Type = "about:blank"
		p.Title = http.StatusText(p.Status)
	}
	writeJSON(w, p.Status, "application/problem+json", p)
}

// writeJSON writes v as JSON with the given status and media type.
func writeJSON(w http.ResponseWriter, status int, mediaType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here: every value sent is a plain
		// struct of strings, times, modes and scope sets.
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
