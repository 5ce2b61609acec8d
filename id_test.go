package keyward_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

func TestParseID(t *testing.T) {
	e := newEnv(t)
	_, rec := e.create(t, apikey.Test)
	for _, s := range []string{rec.ID.String(), strings.ToUpper(rec.ID.String())} {
		id, err := keyward.ParseID(s)
		if err != nil || id != rec.ID {
			t.Errorf("ParseID(%q) = %v, %v", s, id, err)
		}
	}
	id, err := keyward.ParseID(rec.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.acct.Get(context.Background(), id); err != nil || got.ID != rec.ID {
		t.Errorf("Get by a parsed ID: %v", err)
	}
	for _, bad := range []string{
		"", "x", "00000000-0000-0000-0000-000000000000",
		"urn:uuid:" + rec.ID.String(), "{" + rec.ID.String() + "}",
		strings.ReplaceAll(rec.ID.String(), "-", ""),
		rec.ID.String()[:35] + "g",
	} {
		_, err := keyward.ParseID(bad)
		inputField(t, err, "id")
		if !errors.Is(err, keyward.ErrInvalidInput) {
			t.Errorf("ParseID(%q) = %v, want ErrInvalidInput", bad, err)
		}
	}
}

func ExampleParseID() {
	id, err := keyward.ParseID("0190d7a4-8c1e-7a3b-9f00-5c2d6e7f8a9b") // such as r.PathValue("id")
	fmt.Println(id, err)
	_, err = keyward.ParseID("../../etc/passwd")
	fmt.Println(err)
	// Output:
	// 0190d7a4-8c1e-7a3b-9f00-5c2d6e7f8a9b <nil>
	// keyward: invalid id: must be a key ID of 36 characters, such as 0190d7a4-8c1e-7a3b-9f00-5c2d6e7f8a9b
}
