// Package dashboard is the "Dashboard → API Keys" page and its JSON
// management API, as one [http.Handler] that a Go service mounts behind its
// own operator authentication:
//
//	dash, err := dashboard.New(keys, authorize)
//	...
//	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))
//
// The page lists every key with its name, prefix, mode, scopes, last use,
// creation time and status (revoked keys stay listed with their revocation
// time); creates keys and shows the raw key once; revokes a key after a
// confirmation; and rolls a key with an overlap. It is rendered on the
// server with [html/template], its stylesheet and script are embedded, it
// loads nothing from elsewhere, and it works without JavaScript (the script
// only adds a copy button and applies filters on change).
//
// # Security
//
// The dashboard never authenticates operators itself. [New] requires an
// [AuthorizeFunc], the application's own check, which names the operator
// for the audit; without one New returns an error, so the dashboard cannot
// be mounted open by accident. Every request, assets included, passes that
// check first.
//
// State-changing requests pass [http.CrossOriginProtection] before the
// check: a browser request that the Sec-Fetch-Site or Origin header marks as
// cross-origin gets 403 Forbidden, so another site cannot revoke or create
// keys with the operator's cookies or Basic credentials. Requests from
// non-browser clients, which send neither header, pass. All responses carry
// a strict Content-Security-Policy, X-Frame-Options: DENY and
// Cache-Control: no-store.
//
// The raw key of a new key is in one response only: the answer to the
// create (or rotate) request, which is marked Cache-Control: no-store. It is
// never put in a URL or a redirect, and never logged. Without JavaScript
// this works because the form's POST answers with the page that shows the
// key; the page never redirects to it.
//
// # Audit
//
// Every key created, revoked or rotated is logged at Info level ([WithLogger],
// default [slog.Default]) with the operator and the key's ID, name, display
// prefix and mode, and passed to the hook set with [WithAudit] as an
// [Event]. Neither ever holds the raw key or its hash.
//
// # Faces and routes
//
// The routes below are relative to the mount point. The page and the API
// share them: a request is the API's unless it is a form post or a read
// whose Accept header includes text/html, as a browser's does.
//
//	GET  /                    redirects to keys
//	GET  /keys                list keys, newest first
//	POST /keys                create a key
//	GET  /keys/new            the page's form to create a key
//	GET  /keys/{id}           get a key
//	GET  /keys/{id}/revoke    the page's confirmation
//	POST /keys/{id}/revoke    revoke a key
//	GET  /keys/{id}/rotate    the page's choice of overlap
//	POST /keys/{id}/rotate    roll a key: a new key, and the old one expires
//	GET  /assets/{name}       the stylesheet and the script
//
// # The JSON API
//
// A key is the JSON of [apikey.Record] (which never includes the hash;
// absent times are left out) with its status at the time of the request:
//
//	{"id": "0190…", "name": "Production server", "prefix": "ck_live_abc123",
//	 "mode": "live", "scopes": ["sessions:write"],
//	 "created_at": "2026-11-01T09:30:00Z", "last_used_at": "…",
//	 "revoked_at": "…", "expires_at": "…", "status": "active"}
//
// GET /keys takes the query parameters limit (default 100, at most 1000),
// cursor, mode (live or test) and status (active, revoked or expired), and
// answers {"keys": [...], "next_cursor": "…"}; pass next_cursor as cursor
// for the next page; it is absent on the last page.
//
// POST /keys takes {"name": "…", "mode": "live", "scopes": ["…"],
// "expires_at": "2030-01-02T15:04:05Z"} (expires_at is optional) and
// answers 201 Created with {"raw_key": "ck_live_…", "key": {…}}. The raw
// key is in this response only.
//
// POST /keys/{id}/rotate takes {"overlap": "24h"}, a Go duration for which
// the old key keeps working ("0s" ends it at once), and answers 201 Created
// with {"raw_key": "…", "key": {the new key}, "replaced": {the old key,
// with its expiry}}.
//
// POST /keys/{id}/revoke takes no body and answers 200 with the revoked key.
// GET /keys/{id} answers 200 with the key.
//
// # Errors
//
// Errors are RFC 9457 problem details, application/problem+json, such as
//
//	{"type": "about:blank", "title": "Not Found", "status": 404,
//	 "detail": "No key has this ID."}
//
// Statuses: 400 invalid request, 401 the AuthorizeFunc refused, 403
// cross-origin, 404 no such key (or not a key ID), 405 method, 406 a page
// asked for as JSON, 409 the key is revoked (revocation is final and a
// revoked key cannot be rolled), 413 body over 64 KiB, 415 not JSON, 503
// key store unavailable (nothing was changed), 500 anything else. Details
// never carry internal error text.
//
// # Invalid field
//
// A request with an invalid field gets 400 and a problem of the type
// https://pkg.go.dev/github.com/keyward/keyward/dashboard#hdr-Invalid_field
// whose extension member "field" names it: name, mode, scopes, expires_at,
// overlap, limit, cursor or status, or an unknown field of the body.
//
//	{"type": "https://pkg.go.dev/github.com/keyward/keyward/dashboard#hdr-Invalid_field",
//	 "title": "Invalid field", "status": 400, "field": "scopes",
//	 "detail": "scopes: scope \"links:delete\": unknown scope"}
//
// On the page, the form is shown again with what was entered and the
// message next to the field.
package dashboard
