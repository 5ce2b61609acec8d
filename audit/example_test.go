package audit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/audit"
)

// A service names itself as the actor of the changes it makes; the store
// records it in each change's audit entry.
func ExampleWithActor() {
	ctx := audit.WithActor(context.Background(), audit.Actor{Type: audit.TypeService, ID: "billing"})
	fmt.Println(audit.ActorFrom(ctx))
	// Output: service:billing
}

// Check walks a chain oldest first and names the first entry that does
// not hold.
func ExampleCheck() {
	var chain []audit.Entry
	var last audit.Entry
	for i := range 3 {
		last = audit.Next(last, audit.Event{Kind: audit.Created, Owner: "acct_123", KeyID: uuid.New(),
			At: time.Date(2026, 12, 1, 9, i, 0, 0, time.UTC)})
		chain = append(chain, last)
	}
	fmt.Println(audit.Check("acct_123", chain))

	chain[1].Actor = audit.Actor{Type: audit.TypeOperator, ID: "mallory"} // edited afterwards
	err := audit.Check("acct_123", chain)
	fmt.Println(errors.Is(err, audit.ErrTampered), err)
	// Output:
	// <nil>
	// true audit: the trail of "acct_123" does not hold at entry 2: it was edited: its content does not match its hash
}
