package secretscanning_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/secretscanning"
	"github.com/keyward/keyward/store/memory"
)

// The handler mounted on a mux, and an alert from GitHub for a key that
// was pushed to a public repository: the key is revoked, and GitHub is
// told it was a true positive.
func Example() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	// In production, NewHandler fetches GitHub's public keys itself
	// (secretscanning.NewGitHubKeys). Here, with no network, a key made
	// for the example stands in for GitHub's.
	github, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	alerts, err := secretscanning.NewHandler(keys,
		secretscanning.WithKeySource(secretscanning.StaticKeys(secretscanning.PublicKey{
			ID: "example-key", Key: &github.PublicKey, Current: true,
		})),
		secretscanning.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /github/secret-scanning", alerts) // the URL registered with GitHub

	// A key of the account acct_123, which its owner then pushes to
	// GitHub by mistake.
	ctx := context.Background()
	sec, _, err := keys.Owner("acct_123").Create(ctx, keyward.CreateParams{
		Name: "CI", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
	})
	if err != nil {
		log.Fatal(err)
	}

	// GitHub's alert: the matches, signed.
	body := `[{"token":"` + sec.Reveal() + `","type":"keyward_api_key",` +
		`"url":"https://github.com/octo/shop/blob/9f2c/.env","source":"content"}]`
	digest := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, github, digest[:])
	if err != nil {
		log.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/github/secret-scanning", strings.NewReader(body))
	req.Header.Set(secretscanning.HeaderKeyID, "example-key")
	req.Header.Set(secretscanning.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)

	var feedback []secretscanning.Feedback
	if err := json.Unmarshal(rec.Body.Bytes(), &feedback); err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Code, feedback[0].Label, feedback[0].TokenHash == sec.Hash().String())

	// The key no longer authenticates.
	_, err = keys.Verify(ctx, sec.Reveal())
	fmt.Println(errors.Is(err, keyward.ErrRevoked))
	// Output:
	// 200 true_positive true
	// true
}
