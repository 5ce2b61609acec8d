// Package problem writes RFC 9457 problem details: the JSON body of every
// error keyward answers, from the middleware, the dashboard's API and the
// example, so that a client reads them all the same way.
//
//	problem.Write(w, problem.Problem{
//		Status: http.StatusNotFound,
//		Detail: "No key has this ID.",
//	})
//
// writes
//
//	HTTP/1.1 404 Not Found
//	Content-Type: application/problem+json
//
//	{"type":"about:blank","title":"Not Found","status":404,"detail":"No key has this ID."}
package problem

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
)

// MediaType is the media type of a problem details body.
const MediaType = "application/problem+json"

// A Problem is an RFC 9457 problem details object. Its text is shown to
// clients: it must never carry a key or an internal error's text.
type Problem struct {
	// Type is a URI that identifies the problem type, ideally its
	// documentation; empty means "about:blank", a problem that the HTTP
	// status alone describes.
	Type string
	// Title is a short summary of the problem type; empty means the
	// status text, which is right for "about:blank".
	Title string
	// Status is the HTTP status code.
	Status int
	// Detail explains this occurrence of the problem, for the client.
	Detail string
	// Extensions are extra members of the object, such as
	// "required_scopes"; their values are encoded as JSON. Names of the
	// standard members are ignored here.
	Extensions map[string]any
}

// MarshalJSON encodes the problem: type, title, status and detail (left
// out if empty), then the extension members in order of their names.
// Defaults for an empty Type or Title are applied as [Write] does.
func (p Problem) MarshalJSON() ([]byte, error) {
	p = p.withDefaults()
	std, err := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail,omitempty"`
	}{p.Type, p.Title, p.Status, p.Detail})
	if err != nil || len(p.Extensions) == 0 {
		return std, err
	}
	var b bytes.Buffer
	b.Write(std[:len(std)-1]) // without the closing brace
	for _, name := range slices.Sorted(maps.Keys(p.Extensions)) {
		switch name {
		case "type", "title", "status", "detail", "instance":
			continue
		}
		k, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(p.Extensions[name])
		if err != nil {
			return nil, err
		}
		b.WriteByte(',')
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (p Problem) withDefaults() Problem {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	return p
}

// Write sends p with its status, as application/problem+json, marked
// Cache-Control: no-store and X-Content-Type-Options: nosniff. Headers set
// on w before, such as WWW-Authenticate or Retry-After, are sent too. If an
// extension cannot be encoded, Write sends the problem without its
// extensions.
func Write(w http.ResponseWriter, p Problem) {
	body, err := p.MarshalJSON()
	if err != nil {
		p.Extensions = nil
		body, _ = p.MarshalJSON() // strings and an int: cannot fail
	}
	h := w.Header()
	h.Set("Content-Type", MediaType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	w.Write(append(body, '\n'))
}
