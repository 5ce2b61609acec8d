package memory_test

import (
	"context"
	"fmt"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// The memory store is what tests use: no setup, and the same behaviour as
// the PostgreSQL store.
func Example() {
	st := memory.New()
	keys, err := keyward.New(st)
	if err != nil {
		panic(err)
	}
	defer keys.Close()

	_, _, err = keys.Owner("acct_1").Create(context.Background(), keyward.CreateParams{
		Name: "test", Mode: apikey.Test, Scopes: scope.NewSet(scope.EventsRead),
	})
	fmt.Println(err, st.Len())
	// Output: <nil> 1
}
