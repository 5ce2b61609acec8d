package secretscanning

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// A match is one secret GitHub found: an element of the request body.
// Token is a raw key: it is never logged, returned or put in an error.
type match struct {
	Token  string // the text that matched the registered pattern
	Type   string // the secret type registered with GitHub
	URL    string // where GitHub found it; may be empty
	Source string // what GitHub found it in: "content", "commit", …
}

// wireMatch is a match as JSON carries it. Pointers tell a missing member
// from an empty one.
type wireMatch struct {
	Token  *string `json:"token"`
	Type   *string `json:"type"`
	URL    string  `json:"url"`
	Source string  `json:"source"`
}

// Errors of parseMatches. Their text is shown to clients, and never holds
// a token.
var (
	errNotArray   = errors.New("the body is not a JSON array of matches")
	errMatchShape = errors.New("a match is not an object with a non-empty string token and type")
	errTooMany    = errors.New("the body holds more matches than this endpoint accepts in one request")
)

// parseMatches parses a request body: a JSON array of objects, each with
// a non-empty string "token" and "type" and optional string "url" and
// "source"; other members are ignored, for GitHub may add some. It
// returns errTooMany as soon as the array holds more than max elements,
// errNotArray or errMatchShape for any other departure from that shape,
// including data after the array. An empty array is valid.
func parseMatches(body []byte, max int) ([]match, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, errNotArray
	}
	var matches []match
	for dec.More() {
		if len(matches) == max {
			return nil, errTooMany
		}
		// Only an object decodes into a struct without error, but null
		// does too, as a zero value: its missing token refuses it.
		var w wireMatch
		if err := dec.Decode(&w); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) {
				return nil, errMatchShape
			}
			return nil, errNotArray
		}
		if w.Token == nil || *w.Token == "" || w.Type == nil || *w.Type == "" {
			return nil, errMatchShape
		}
		matches = append(matches, match{Token: *w.Token, Type: *w.Type, URL: w.URL, Source: w.Source})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return nil, errNotArray
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errNotArray // data after the array
	}
	return matches, nil
}
