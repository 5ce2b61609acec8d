package secretscanning_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/syncbuf"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/secretscanning"
	"github.com/keyward/keyward/store/memory"
)

// TestWithKeyward runs alerts through the real lifecycle over the memory
// store: the exposed key is revoked, the others are untouched, and a
// repeated alert answers the same.
func TestWithKeyward(t *testing.T) {
	keywardLogs := new(syncbuf.Buffer)
	keys, err := keyward.New(memory.New(), keyward.WithLogger(slog.New(slog.NewTextHandler(keywardLogs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	ctx := context.Background()
	create := func(name string) (apikey.Secret, apikey.Record) {
		t.Helper()
		sec, rec, err := keys.Owner("acct_123").Create(ctx, keyward.CreateParams{
			Name: name, Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
		})
		if err != nil {
			t.Fatal(err)
		}
		return sec, rec
	}
	leaked, leakedRec := create("leaked")
	safe, _ := create("safe")
	unknown := "ck_live_0123456789abcdefghijABCDEFGHIJ01" // well formed, not stored

	gh := newSigner(t, "key-1")
	h, logs := newHandler(t, keys, []signer{gh})
	url := "https://github.com/octo/shop/blob/9f2c/.env"
	body, _ := json.Marshal([]map[string]string{
		{"token": leaked.Reveal(), "type": "keyward_api_key", "url": url, "source": "content"},
		{"token": unknown, "type": "keyward_api_key", "url": url, "source": "content"},
		{"token": "ck_live_short", "type": "keyward_api_key", "url": "", "source": "commit"},
		{"token": leaked.Reveal(), "type": "keyward_api_key", "url": "https://gist.github.com/octo/1", "source": "gist_content"},
	})
	want := []secretscanning.Feedback{
		{TokenHash: leaked.Hash().String(), TokenType: "keyward_api_key", Label: "true_positive"},
		{TokenHash: sha(unknown), TokenType: "keyward_api_key", Label: "false_positive"},
		{TokenHash: sha("ck_live_short"), TokenType: "keyward_api_key", Label: "false_positive"},
	}
	for _, attempt := range []string{"first alert", "repeated alert"} {
		rec := serve(h, gh.request(t, string(body)))
		var got []secretscanning.Feedback
		if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != http.StatusOK || err != nil {
			t.Fatalf("%s: %d %s", attempt, rec.Code, rec.Body)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: feedback\n%+v\nwant\n%+v", attempt, got, want)
		}
		checkNoToken(t, rec, logs, leaked.Reveal(), safe.Reveal(), unknown)
	}

	if _, err := keys.Verify(ctx, leaked.Reveal()); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify(leaked key) error = %v, want ErrRevoked", err)
	}
	if _, err := keys.Verify(ctx, safe.Reveal()); err != nil {
		t.Errorf("Verify(safe key) error = %v, want nil", err)
	}
	got, err := keys.Owner("acct_123").Get(ctx, leakedRec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Exposure == nil || got.Exposure.Source != "github" || got.Exposure.URL != url {
		t.Errorf("the key's exposure is %+v, want source github and the first match's URL", got.Exposure)
	}
	for _, tok := range []string{leaked.Reveal(), safe.Reveal(), unknown} {
		if strings.Contains(keywardLogs.String(), tok) {
			t.Errorf("keyward's log carries a raw token")
		}
	}
}
