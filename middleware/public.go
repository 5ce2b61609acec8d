package middleware

import (
	"fmt"
	"net/http"
	"path"
	"strings"
)

// WithPublic lets requests that match one of the patterns through without
// a key, such as a health check or a status page mounted behind
// Authenticate with the rest of the API:
//
//	middleware.Authenticate(keys, middleware.WithPublic("GET /healthz", "GET /status/"))
//
// Patterns are [http.ServeMux] patterns, matched as a ServeMux matches
// them (method, host, exact path or subtree, wildcards). A public request
// reaches the next handler unchanged, with no key in its context
// ([KeyFrom] is false), and costs no lookup. Only a request whose path is
// already in canonical form, escaped and decoded, is public: one a
// ServeMux would redirect first (such as /api/../healthz, or /status for
// the subtree /status/), or whose decoded path is not canonical (such as
// /status/%2E%2E/api),
// goes through authentication like any other, so that a router that does
// not clean paths cannot be reached through a public pattern. Route public
// paths the same way in the next handler: a router that would send a
// public path to another handler defeats the purpose.
//
// Authenticate panics, at start-up, on an invalid or repeated pattern.
func WithPublic(patterns ...string) Option {
	return func(c *config) {
		if len(patterns) == 0 {
			c.setErr(fmt.Errorf("middleware: WithPublic needs at least one pattern"))
			return
		}
		if c.public == nil {
			c.public = http.NewServeMux()
		}
		for _, p := range patterns {
			if err := handlePublic(c.public, p); err != nil {
				c.setErr(err)
				return
			}
		}
	}
}

// publicRoute marks, in the ServeMux of WithPublic, the patterns that are
// public: any other handler the mux returns (not found, a redirect) is
// not.
type publicRoute struct{}

func (publicRoute) ServeHTTP(http.ResponseWriter, *http.Request) {}

// handlePublic registers a public pattern, turning ServeMux's panic on a
// bad one into an error.
func handlePublic(mux *http.ServeMux, pattern string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("middleware: WithPublic: %v", v)
		}
	}()
	mux.Handle(pattern, publicRoute{})
	return nil
}

// isPublic reports whether r matches a public pattern, in canonical form:
// its decoded path as well as its escaped one, which is what a ServeMux
// matches (so that /status/%2E%2E/api, whose path is /status/../api, is
// not public).
func (c *config) isPublic(r *http.Request) bool {
	if c.public == nil || !canonical(r.URL.Path) {
		return false
	}
	h, _ := c.public.Handler(r)
	_, ok := h.(publicRoute)
	return ok
}

// canonical reports whether p is a path as a ServeMux cleans it: rooted,
// without . or .. elements or repeated slashes (a trailing slash stays).
func canonical(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p
}
