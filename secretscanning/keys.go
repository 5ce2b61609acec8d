package secretscanning

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownKeyID is returned, or matched through [errors.Is], by a
// [KeySource] that does not know the key identifier a request names. The
// handler answers it with 401: the request is not signed by GitHub.
var ErrUnknownKeyID = errors.New("secretscanning: unknown GitHub public key identifier")

// A PublicKey is one of the keys GitHub signs secret-scanning requests
// with, as its meta endpoint lists them.
type PublicKey struct {
	// ID is the key's key_identifier, which a request names in its
	// Github-Public-Key-Identifier header.
	ID string
	// Key is the ECDSA public key, on the NIST P-256 curve.
	Key *ecdsa.PublicKey
	// Current is GitHub's is_current: whether GitHub signs new requests
	// with this key. It is informational: GitHub's documentation picks the
	// key by identifier alone, so a listed key that is no longer current
	// still verifies the requests it signed.
	Current bool
}

// A KeySource finds GitHub's public keys by identifier.
//
// Key returns the key whose ID is id. When no such key exists, it returns
// an error matching [ErrUnknownKeyID], which the handler answers with 401.
// Any other error means the keys could not be obtained (GitHub
// unreachable, a malformed answer, the context ended): the handler
// answers 503, so that the alert may come again. A KeySource must be safe
// for concurrent use, and must bound the work an unknown identifier
// causes: identifiers come from unauthenticated requests.
type KeySource interface {
	Key(ctx context.Context, id string) (PublicKey, error)
}

// StaticKeys returns a [KeySource] that knows the given keys and no
// others: for tests, and for servers that cannot reach GitHub, which load
// the keys once with [ParsePublicKeys] from a copy of GitHub's document. A
// later key with the same ID replaces an earlier one.
func StaticKeys(keys ...PublicKey) KeySource {
	s := make(staticKeys, len(keys))
	for _, k := range keys {
		s[k.ID] = k
	}
	return s
}

type staticKeys map[string]PublicKey

func (s staticKeys) Key(_ context.Context, id string) (PublicKey, error) {
	k, ok := s[id]
	if !ok {
		return PublicKey{}, ErrUnknownKeyID
	}
	return k, nil
}

// keysDocument is the JSON document of GitHub's meta endpoint.
type keysDocument struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// ParsePublicKeys parses the JSON document GitHub's meta endpoint
// ([DefaultKeysURL]) serves:
//
//	{"public_keys": [{"key_identifier": "bcb5…", "key": "-----BEGIN PUBLIC KEY-----\n…", "is_current": true}]}
//
// Each key must be a PEM "PUBLIC KEY" block holding an ECDSA P-256 key
// (GitHub's ECDSA-NIST-P256V1-SHA256), with a non-empty identifier. An
// entry that is not fails the whole document, as does a document with no
// keys: a partial key set would refuse genuine requests silently. Other
// members of the document are ignored.
func ParsePublicKeys(doc []byte) ([]PublicKey, error) {
	var d keysDocument
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("secretscanning: GitHub's public keys: %w", err)
	}
	if len(d.PublicKeys) == 0 {
		return nil, errors.New("secretscanning: GitHub's public keys: the document lists no key")
	}
	keys := make([]PublicKey, 0, len(d.PublicKeys))
	for i, e := range d.PublicKeys {
		if e.KeyIdentifier == "" {
			return nil, fmt.Errorf("secretscanning: GitHub's public keys: key %d has no key_identifier", i)
		}
		k, err := parsePEM(e.Key)
		if err != nil {
			return nil, fmt.Errorf("secretscanning: GitHub's public key %q: %w", e.KeyIdentifier, err)
		}
		keys = append(keys, PublicKey{ID: e.KeyIdentifier, Key: k, Current: e.IsCurrent})
	}
	return keys, nil
}

// parsePEM parses one PEM "PUBLIC KEY" block holding an ECDSA P-256 key.
func parsePEM(s string) (*ecdsa.PublicKey, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM block of type %q, want PUBLIC KEY", block.Type)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("text after the PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return k, nil
}
