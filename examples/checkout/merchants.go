package main

import (
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/scope"
)

// The demo accounts of the example: two merchants of the checkout
// platform, each with its own data and its own keys, and the operators who
// sign in to the dashboard for them.

// A merchant is a demo account. Its ID is the owner of its keys
// (apikey.Record.Owner), and so of every object its keys create.
type merchant struct {
	id string
	// The test-mode data it has from the start, so that the first GET shows
	// something; each merchant's is different.
	customers []Customer
	links     []Link
}

// merchants are the demo accounts, in the order the banner lists them.
var merchants = []merchant{
	{
		id: "acme",
		customers: []Customer{
			{Email: "marie@example.com", Name: "Marie Curie"},
			{Email: "pierre@example.com", Name: "Pierre Curie"},
		},
		links: []Link{
			{Name: "T-shirt", Amount: Amount{Value: "25.00", Currency: "USD"}},
		},
	},
	{
		id: "globex",
		customers: []Customer{
			{Email: "hedy@example.com", Name: "Hedy Lamarr"},
		},
		links: []Link{
			{Name: "Hammock", Amount: Amount{Value: "89.00", Currency: "EUR"}},
			{Name: "Sun lounger", Amount: Amount{Value: "149.00", Currency: "EUR"}},
		},
	},
}

// demoMetadataKey is the metadata key that marks a demo key; its value says
// which one (demoKeySpec.tag). A start revokes the demo keys of earlier
// starts by this mark, and touches no other key.
const demoMetadataKey = "demo"

// A demoKeySpec describes one of the test keys each merchant gets at
// start-up.
type demoKeySpec struct {
	label  string // in the banner, such as "all scopes"
	name   string // the key's name, as the dashboard shows it
	tag    string // the value of its demoMetadataKey
	scopes func(*scope.Catalog) scope.Set
	policy *apikey.Policy // its limits, if any
}

// demoKeySpecs are the demo keys of every merchant, in the banner's order.
var demoKeySpecs = []demoKeySpec{
	{
		label:  "all scopes",
		name:   "Demo: all scopes",
		tag:    "all-scopes",
		scopes: func(c *scope.Catalog) scope.Set { return scope.NewSet(c.Scopes()...) },
		// 60 requests a minute, 10 at once: a quick loop of curl
		// commands meets the limit.
		policy: &apikey.Policy{Rate: apikey.RateLimit{Requests: 60, Period: time.Minute, Burst: 10}},
	},
	{
		label:  "sessions:write",
		name:   "Demo: session creator",
		tag:    "sessions-write",
		scopes: func(*scope.Catalog) scope.Set { return scope.NewSet(scope.SessionsWrite) },
	},
}

// A demoUser is an operator of the dashboard's demo sign-in: a user name,
// the merchant whose keys it manages, and its role there.
type demoUser struct {
	name     string
	merchant string
	role     dashboard.Role
}

// demoUsers are the dashboard's operators, in the banner's order. Any other
// user name is refused.
var demoUsers = []demoUser{
	{"ada", "acme", dashboard.Admin},
	{"bob", "acme", dashboard.Developer},
	{"carol", "acme", dashboard.Viewer},
	{"grace", "globex", dashboard.Admin},
	{"dan", "globex", dashboard.Viewer},
}

// roleSummary says in a few words what a role may do, for the banner.
func roleSummary(r dashboard.Role) string {
	switch r {
	case dashboard.Admin:
		return "admin: manages every key"
	case dashboard.Developer:
		return "developer: manages test keys"
	case dashboard.Viewer:
		return "viewer: reads only"
	}
	return string(r)
}
