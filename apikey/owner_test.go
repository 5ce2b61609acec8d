package apikey_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
)

func TestValidOwner(t *testing.T) {
	for _, owner := range []string{"acct_123", "merchant-42", apikey.DefaultOwner, "a", "user@example.com",
		"tenant/7:eu+1=x", strings.Repeat("o", apikey.MaxOwnerLen), "!~"} {
		if err := apikey.ValidOwner(owner); err != nil {
			t.Errorf("ValidOwner(%q) = %v", owner, err)
		}
	}
	for _, owner := range []string{"", " acct", "acct 1", "acct\t1", "acct\n", "acct\x00", "ácct", "acct\u200B",
		"acct\x7f", strings.Repeat("o", apikey.MaxOwnerLen+1)} {
		if err := apikey.ValidOwner(owner); !errors.Is(err, apikey.ErrInvalidOwner) {
			t.Errorf("ValidOwner(%q) = %v, want ErrInvalidOwner", owner, err)
		}
	}
}

func TestValidNameRefusesSpoofingCharacters(t *testing.T) {
	for _, r := range []rune{0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
		0x2066, 0x2067, 0x2068, 0x2069, 0x2028, 0x2029, 0xFEFF} {
		name := "Prod" + string(r) + "uction"
		err := apikey.ValidName(name)
		if err == nil || !strings.Contains(err.Error(), "formatting characters") {
			t.Errorf("ValidName with U+%04X = %v, want a refusal naming formatting characters", r, err)
		}
	}
	// Their neighbours, and ordinary non-ASCII text, are fine.
	for _, name := range []string{"Prod\u200Auction", "Prod\u2030", "Production — ünïcode", "本番サーバー", "שרת ייצור"} {
		if err := apikey.ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
}
