package apikey_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
)

func validRecord(t *testing.T) apikey.Record {
	t.Helper()
	sec := newSecret(t)
	return apikey.Record{
		ID:        uuid.New(),
		Owner:     "acct_1",
		Name:      "Production server",
		Prefix:    sec.DisplayPrefix(),
		Mode:      sec.Mode(),
		Scopes:    scope.NewSet(scope.SessionsWrite),
		Hash:      sec.Hash(),
		CreatedAt: time.Now(),
	}
}

func TestRecordValidate(t *testing.T) {
	if err := validRecord(t).Validate(); err != nil {
		t.Fatalf("a valid record: %v", err)
	}
	replacement := validRecord(t)
	replacement.Replaces = uuid.New()
	if err := replacement.Validate(); err != nil {
		t.Errorf("a valid replacement: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*apikey.Record)
	}{
		{"nil ID", func(r *apikey.Record) { r.ID = uuid.Nil }},
		{"no owner", func(r *apikey.Record) { r.Owner = "" }},
		{"owner with a space", func(r *apikey.Record) { r.Owner = "acct 1" }},
		{"empty name", func(r *apikey.Record) { r.Name = "" }},
		{"spoofing name", func(r *apikey.Record) { r.Name = "admin\u202Etset" }},
		{"invalid mode", func(r *apikey.Record) { r.Mode = 0 }},
		{"no prefix", func(r *apikey.Record) { r.Prefix = "" }},
		{"no hash", func(r *apikey.Record) { r.Hash = apikey.Hash{} }},
		{"no scopes", func(r *apikey.Record) { r.Scopes = scope.Set{} }},
		{"malformed scope", func(r *apikey.Record) { r.Scopes = scope.NewSet("Links:Read") }},
		{"no creation time", func(r *apikey.Record) { r.CreatedAt = time.Time{} }},
		{"revoked", func(r *apikey.Record) { r.RevokedAt = time.Now() }},
		{"already replaced", func(r *apikey.Record) { r.ReplacedBy = uuid.New() }},
		{"replaces itself", func(r *apikey.Record) { r.Replaces = r.ID }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := validRecord(t)
			tc.mutate(&rec)
			if err := rec.Validate(); !errors.Is(err, apikey.ErrInvalidRecord) {
				t.Errorf("Validate = %v, want ErrInvalidRecord", err)
			}
		})
	}
}

func TestRecordAt(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	rec := apikey.Record{Name: "k", Mode: apikey.Live, ExpiresAt: now.Add(time.Hour)}
	for at, want := range map[time.Time]string{now: `"status":"active"`, now.Add(time.Hour): `"status":"expired"`} {
		b, err := json.Marshal(rec.At(at))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) || !strings.Contains(string(b), `"name":"k"`) {
			t.Errorf("JSON at %v = %s, want the record's fields and %s", at, b, want)
		}
	}
}
