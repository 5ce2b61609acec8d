package apikey

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ReasonExposed is the revocation reason of a key revoked because it was
// found exposed.
const ReasonExposed = "exposed"

// MaxReasonLen is the longest revocation reason accepted, in bytes.
const MaxReasonLen = 200

// ValidReason checks a revocation reason: empty, or text that [ValidName]
// would accept as a name, up to [MaxReasonLen] bytes.
func ValidReason(reason string) error {
	if reason == "" {
		return nil
	}
	if len(reason) > MaxReasonLen {
		return fmt.Errorf("reason is longer than %d bytes", MaxReasonLen)
	}
	if err := ValidName(reason); err != nil {
		return errors.New(strings.Replace(err.Error(), "name", "reason", 1))
	}
	return nil
}

// Limits of an [Exposure].
const (
	MaxSourceLen = 100  // the longest Exposure.Source, in bytes
	MaxURLLen    = 2000 // the longest Exposure.URL, in bytes
)

// An Exposure records where a key was found in the open.
type Exposure struct {
	// At is when the exposure was reported.
	At time.Time `json:"at"`
	// Source names who found the key, such as "github" or "support".
	Source string `json:"source"`
	// URL, if known, points at the place the key was found.
	URL string `json:"url,omitempty"`
}

// Validate checks an exposure: a time, a source that [ValidName] would
// accept of at most [MaxSourceLen] bytes, and a URL of at most
// [MaxURLLen] bytes of printable ASCII without spaces, or none.
func (e Exposure) Validate() error {
	switch {
	case e.At.IsZero():
		return errors.New("exposure time is required")
	case e.Source == "":
		return errors.New("exposure source is required")
	case len(e.Source) > MaxSourceLen:
		return fmt.Errorf("exposure source is longer than %d bytes", MaxSourceLen)
	}
	if err := ValidName(e.Source); err != nil {
		return errors.New("exposure source: " + strings.TrimPrefix(err.Error(), "name "))
	}
	return ValidExposureURL(e.URL)
}

// ValidExposureURL checks the URL of an [Exposure]: empty, or at most
// [MaxURLLen] bytes of printable ASCII without spaces.
func ValidExposureURL(url string) error {
	if len(url) > MaxURLLen {
		return fmt.Errorf("exposure URL is longer than %d bytes", MaxURLLen)
	}
	for i := 0; i < len(url); i++ {
		if c := url[i]; c <= ' ' || c > '~' {
			return errors.New("exposure URL may hold only printable ASCII characters other than space")
		}
	}
	return nil
}

// Limits of a [Trip]'s text fields, in bytes; [Trip.Clean] cuts longer
// values.
const (
	MaxTripAddrLen      = 64
	MaxTripUserAgentLen = 256
	MaxTripRouteLen     = 256
)

// A Trip is one use of a canary key: what is known of the request that
// presented it.
type Trip struct {
	// KeyID is the canary key's ID, and Owner its owner.
	KeyID uuid.UUID `json:"key_id"`
	Owner string    `json:"owner"`
	// At is when the key was presented.
	At time.Time `json:"at"`
	// Addr is the client's network address, as the server saw it.
	Addr string `json:"addr,omitempty"`
	// UserAgent is the client's User-Agent header.
	UserAgent string `json:"user_agent,omitempty"`
	// Route is the route or method the client called, such as
	// "GET /v1/links" or "/checkout.v1.Links/List".
	Route string `json:"route,omitempty"`
}

// Clean returns t with its text fields made safe to store and show: valid
// UTF-8 without control or formatting characters, each cut to its limit.
// They come from the client, who may be hostile. The result holds copies,
// not slices of the originals, so a trip does not keep a request's memory
// reachable.
func (t Trip) Clean() Trip {
	t.Addr = cleanText(t.Addr, MaxTripAddrLen)
	t.UserAgent = cleanText(t.UserAgent, MaxTripUserAgentLen)
	t.Route = cleanText(t.Route, MaxTripRouteLen)
	return t
}

// cleanText replaces invalid UTF-8, control and formatting characters with
// U+FFFD and cuts s to at most n bytes on a character boundary.
func cleanText(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || isFormatting(r) {
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
