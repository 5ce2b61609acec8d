// Package scanrules writes the rules that secret scanners need to find a
// product's keys in code, configuration and history: a gitleaks
// configuration ([Gitleaks]) and GitHub secret scanning custom patterns
// ([GitHubPatterns], [GitHubMarkdown]). Both are derived from an
// [apikey.Format], so they follow the product prefix and the checksum
// option of the keys they look for.
//
// Every format gets one rule per mode, live first: a live key that leaks
// acts on real data, a test key only on test data, so the two carry
// different rule IDs ("ck-live-api-key", "ck-test-api-key"), tags and
// pattern names, and an alert says which it is.
//
// # What the rules match
//
// A rule matches what [apikey.Format.Find] finds: the mode prefix and
// [apikey.RandomLen] base-62 characters (in a checksummed format, with or
// without [apikey.ChecksumLen] more), neither preceded by a letter, digit
// or '_' nor followed by a letter or digit. A key inside a longer
// identifier (my_ck_live_…), a run too short or too long, another
// product's key (sk_live_…) and a display prefix (ck_live_abc123) do not
// match. Two differences remain, both documented in the rules themselves:
//
//   - Neither gitleaks nor GitHub can compute a CRC-32, so a run of a
//     checksummed format's length matches even when its checksum is
//     wrong. Find, and the partner program endpoint of package
//     [github.com/keyward/keyward/secretscanning], check it.
//   - The gitleaks rules skip matches whose Shannon entropy is 3 bits per
//     character or less: placeholders such as ck_test_xxxx…xxxx, which
//     Find accepts since they are well-formed. Generated keys stay far
//     above it: the lowest of 200,000 had 4.16.
//
// # The published rules
//
// docs/secret-scanning in the repository holds the rules for
// [apikey.Default], written by this package; a test keeps them identical
// to what it writes. Command scanrules (in cmd/scanrules) writes them for
// another product prefix:
//
//	go run github.com/keyward/keyward/scanrules/cmd/scanrules -product acme -out .
package scanrules
