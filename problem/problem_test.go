package problem_test

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/keyward/keyward/problem"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		p    problem.Problem
		want string
	}{
		{
			"about:blank defaults",
			problem.Problem{Status: http.StatusNotFound, Detail: "No key has this ID."},
			`{"type":"about:blank","title":"Not Found","status":404,"detail":"No key has this ID."}`,
		},
		{
			"no detail",
			problem.Problem{Status: http.StatusConflict},
			`{"type":"about:blank","title":"Conflict","status":409}`,
		},
		{
			"typed, with extensions in name order, standard names ignored",
			problem.Problem{
				Type: "https://example.com/probs/scope", Title: "Insufficient scope", Status: 403,
				Detail: "Needs <links:write> & more.",
				Extensions: map[string]any{
					"required_scopes": []string{"links:write"},
					"field":           "scopes",
					"status":          200,
				},
			},
			`{"type":"https://example.com/probs/scope","title":"Insufficient scope","status":403,` +
				`"detail":"Needs \u003clinks:write\u003e \u0026 more.","field":"scopes","required_scopes":["links:write"]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Retry-After", "5")
			problem.Write(rec, tc.p)
			if rec.Code != tc.p.Status {
				t.Errorf("status %d, want %d", rec.Code, tc.p.Status)
			}
			for h, want := range map[string]string{
				"Content-Type":           "application/problem+json",
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"Retry-After":            "5", // headers set before are kept
			} {
				if got := rec.Header().Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
			if got := rec.Body.String(); got != tc.want+"\n" {
				t.Errorf("body\n%s\nwant\n%s", got, tc.want)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Error("body is not valid JSON")
			}
		})
	}
}

func TestWriteUnencodableExtension(t *testing.T) {
	rec := httptest.NewRecorder()
	problem.Write(rec, problem.Problem{Status: 400, Detail: "bad", Extensions: map[string]any{"x": math.NaN()}})
	want := `{"type":"about:blank","title":"Bad Request","status":400,"detail":"bad"}` + "\n"
	if rec.Code != 400 || rec.Body.String() != want {
		t.Errorf("got %d %q, want 400 %q", rec.Code, rec.Body.String(), want)
	}
}

func Example() {
	rec := httptest.NewRecorder()
	problem.Write(rec, problem.Problem{
		Status:     http.StatusBadRequest,
		Detail:     "name: name is required",
		Extensions: map[string]any{"field": "name"},
	})
	os.Stdout.Write(rec.Body.Bytes())
	// Output:
	// {"type":"about:blank","title":"Bad Request","status":400,"detail":"name: name is required","field":"name"}
}
