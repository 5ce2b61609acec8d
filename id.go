package keyward

import (
	"errors"

	"github.com/google/uuid"
)

// ParseID parses a key ID as keyward writes it, in URLs and JSON: 36
// characters, such as "0190d7a4-8c1e-7a3b-9f00-5c2d6e7f8a9b", lowercase
// or not. A handler that takes an ID from a path calls it without
// importing a UUID package:
//
//	id, err := keyward.ParseID(r.PathValue("id"))
//
// Anything else, the nil UUID included (no key has it), returns an
// [*InputError] for the field "id", which matches [ErrInvalidInput]. Owner
// methods answer an ID no key of the owner has with [ErrNotFound].
func ParseID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, &InputError{Field: "id", Err: errors.New("must be a key ID of 36 characters, such as 0190d7a4-8c1e-7a3b-9f00-5c2d6e7f8a9b")}
	}
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, &InputError{Field: "id", Err: errors.New("is not a key ID")}
	}
	return id, nil
}
