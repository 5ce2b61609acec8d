package scanrules_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scanrules"
)

// The gitleaks rules of a product whose keys are checksummed: one rule per
// mode, each with its regex.
func ExampleGitleaks() {
	acme, err := apikey.NewFormat("acme", apikey.WithChecksum())
	if err != nil {
		log.Fatal(err)
	}
	toml, err := scanrules.Gitleaks(acme)
	if err != nil {
		log.Fatal(err)
	}
	// Write toml to a file and run: gitleaks git --config thatfile
	for _, line := range strings.Split(string(toml), "\n") {
		if strings.HasPrefix(line, "id = ") || strings.HasPrefix(line, "regex = ") {
			fmt.Println(line)
		}
	}
	// Output:
	// id = "acme-live-api-key"
	// regex = '''\b(acme_live_[0-9A-Za-z]{32}(?:[0-9A-Za-z]{6})?)(?:\b|_)'''
	// id = "acme-test-api-key"
	// regex = '''\b(acme_test_[0-9A-Za-z]{32}(?:[0-9A-Za-z]{6})?)(?:\b|_)'''
}

// The GitHub custom patterns of the checkout API's keys, field by field.
func ExampleGitHubPatterns() {
	patterns, err := scanrules.GitHubPatterns(apikey.Default)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range patterns {
		fmt.Printf("%s\n  secret format: %s\n  before secret: %s\n  after secret:  %s\n",
			p.Name, p.SecretFormat, p.BeforeSecret, p.AfterSecret)
	}
	// Output:
	// ck live-mode API key
	//   secret format: ck_live_[0-9A-Za-z]{32}
	//   before secret: \A|[^0-9A-Za-z_]
	//   after secret:  \z|[^0-9A-Za-z]
	// ck test-mode API key
	//   secret format: ck_test_[0-9A-Za-z]{32}
	//   before secret: \A|[^0-9A-Za-z_]
	//   after secret:  \z|[^0-9A-Za-z]
}
