package scope_test

import (
	"encoding/json"
	"fmt"

	"github.com/keyward/keyward/scope"
)

func ExampleSet() {
	granted := scope.NewSet(scope.SessionsWrite, scope.LinksRead)
	fmt.Println(granted)
	fmt.Println(granted.Has(scope.SessionsWrite))
	fmt.Println(granted.Has(scope.SessionsRead)) // write does not imply read
	fmt.Println(granted.HasAll(scope.SessionsWrite, scope.LinksRead))
	out, _ := json.Marshal(granted)
	fmt.Println(string(out))
	// Output:
	// links:read sessions:write
	// true
	// false
	// true
	// ["links:read","sessions:write"]
}

func ExampleCatalog_ParseSet() {
	_, err := scope.Default.ParseSet("sessions:write", "sessions:delete")
	fmt.Println(err)
	// Output: scope "sessions:delete": unknown scope
}

func ExampleNewCatalog() {
	// A product with its own resources declares its own catalog.
	catalog := scope.MustCatalog("orders:read", "orders:write", "refunds:create")
	set, err := catalog.ParseText("orders:read refunds:create")
	fmt.Println(set, err)
	// Output: orders:read refunds:create <nil>
}
