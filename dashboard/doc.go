// Package dashboard is the "Dashboard → API Keys" page and its JSON
// management API, as one [http.Handler] that a Go service mounts behind its
// own operator authentication:
//
//	dash, err := dashboard.New(keys, authorize)
//	...
//	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))
//
// Each operator manages the keys of one account, as their [Operator] says.
// The page lists the account's keys with their name, prefix, mode, scopes,
// requests of the last 24 hours, last use, creation time and status
// (revoked keys stay listed with their revocation time and reason; a key
// reported exposed is marked so); shows each key with its metadata,
// expiry, limits, the keys it replaced or that replace it, its requests
// of the last 30 days and its history (see History and requests below);
// creates keys, with an optional expiry, metadata and
// limits, and canary keys, and shows the raw key once; edits a key's name,
// metadata, scopes (narrowing only), expiry (earlier only) and limits;
// revokes a key after a confirmation, with an
// optional reason; rolls a key with an overlap; revokes all the account's
// keys at once; and lists the trips of each canary. It is rendered on the
// server with [html/template], its stylesheet and script are embedded, it
// loads nothing from elsewhere, and it works without JavaScript (the
// script only adds a copy button; the list's filters apply when the
// operator presses Filter, never on a change of a select). On a phone
// the list's rows become cards, and no page scrolls sideways. The
// package's browser tests run axe-core on every page, in each of its
// states, 1280 and 375 px wide, with JavaScript and without, and fail on
// any violation.
//
// # Revocation reasons and exposed keys
//
// The confirmations of revoking a key and of revoking all keys have an
// optional Reason field (at most 200 bytes that [apikey.ValidReason]
// accepts, such as "Laptop stolen"), kept on each revoked record
// ([apikey.Record.RevokedReason]) and in the audit trail. A refused
// reason comes back next to its field, as typed. Wherever the page shows
// a key's status, a revoked key shows its reason.
//
// A key reported exposed ([keyward.Keys.ReportExposure], from a secret
// scanner, a support ticket or an operator) is revoked with the reason
// "exposed", and its status carries an Exposed badge with the source that
// reported it, the time of the report, and the URL where the key was
// found. The source and the URL come from the reporter and may be hostile:
// the page shows them as escaped text, never in an attribute, and makes
// the URL a link (rel="noopener noreferrer nofollow") only if it is an
// absolute http or https URL; any other (javascript:, data:, relative) is
// shown as text only. A canary found exposed stays active, and is marked
// Exposed all the same.
//
// # Canary keys
//
// The new-key form's "Canary (tripwire)" box creates a canary
// ([keyward.CreateParams.Canary]): a key made to be planted where a thief
// would look (a configuration file, a CI secret, a dormant repository).
// It never authorizes anything: whoever presents it gets the answer of an
// unknown key, and each use is recorded as a trip ([apikey.Trip]: when,
// the client's address and user agent, the route). The roles that may
// create keys of a mode may create canaries of that mode. The raw key is
// shown once, as any key's, with a note saying it is a canary and where
// to plant it. The list marks canaries with a Canary badge and links each
// to its trips page, which lists the newest trips first (the store keeps
// at least the newest [store.MaxTrips]). A canary cannot be rolled: the
// page offers no Roll key, and a rotation is refused with 409 Conflict;
// to replace a canary, create a new one and revoke the old.
//
// # Limits
//
// A key may carry limits, its [apikey.Policy]: a rate limit (requests per
// second, minute, hour or day, on average, with an optional burst, the
// most at once), a quota (requests per UTC calendar day or month) and the
// networks it works from (such as 203.0.113.0/24 or 2001:db8::/32). The
// middleware enforces them; the dashboard sets them and shows them. The
// new-key form and the edit form have a Limits section: each limit is
// optional, left empty for none, and the networks are written one per
// line. Clearing every field of the edit form removes the key's limits; a
// form posted without the limit fields leaves them as they are. The
// library validates each limit ([apikey.Policy.Validate]), and a refused
// one comes back next to its field, as typed, in the library's words,
// such as "Network 10.1.2.3/8 has bits set past its length; did you mean
// 10.0.0.0/8?". The roles that may create and edit a key set its limits;
// a rolled key keeps them.
//
// The list shows a key's limits in short under its scopes ("Limits:
// 100/min · 10k/day · 2 networks"), the key's page in full. Given the
// limiter that the middleware counts requests with ([WithLimiter]), the
// key's page also shows how much of them is used, at the lifecycle's
// time ([keyward.Keys.Now]):
//
//	Rate: 37 of 100 left, full in 38 s
//	Quota: 4,210 of 10,000 used today, resets at 00:00 UTC
//
// The dashboard only looks ([limit.Limiter.Peek]): it never counts a
// request. A limiter that fails, or does not answer within two seconds,
// makes the page say the usage is unavailable; the failure is logged,
// and the page is shown all the same.
//
// # Accounts and roles
//
// The dashboard never authenticates operators itself. [New] requires an
// [AuthorizeFunc], the application's own check, which says who the
// operator is ([Operator.Name], the actor of their changes in the audit
// trail), which account they act for
// ([Operator.Owner]) and what they may do there ([Operator.Role]). Without
// one New returns an error, so the dashboard cannot be mounted open by
// accident. Every request, assets included, passes that check first; an
// error, or an operator without a name, a valid account or a known role,
// goes to the unauthorized handler ([WithUnauthorized]), with an error
// matching [ErrNoOperator] in the second case.
//
// Every route, HTML and JSON, acts through the operator's account only
// ([keyward.Keys.Owner]): another account's keys are not listed, and
// another account's key ID gets exactly the answer of an ID that no key
// has (404, "No key has this ID."), whatever the route, method or role, so
// that no answer reveals that the ID exists elsewhere. The roles:
//
//	Role        reads  test keys: create, edit,   live keys: create, edit,   revoke all
//	                   roll, revoke               roll, revoke
//	Viewer      yes    no                         no                         no
//	Developer   yes    yes                        no                         no
//	Admin       yes    yes                        yes                        yes
//
// A change the role does not allow gets 403 Forbidden with a message that
// says what the role may do, and is logged at Warn level with the
// operator. The order of the checks keeps answers from depending on other
// accounts: a Viewer is refused every change with 403, whatever the ID; for
// the others, a change to a key first reads the key through the account
// (404 if it has no such key), then checks the role against the key's mode
// (403). The page hides the buttons and form choices the role cannot use
// (a Developer's new-key form offers test mode only), and the server
// checks the role regardless.
//
// # Security
//
// State-changing requests pass [http.CrossOriginProtection] before the
// authorization check: a browser request that the Sec-Fetch-Site or Origin
// header marks as cross-origin gets 403 Forbidden, so another site cannot
// revoke or create keys with the operator's cookies or Basic credentials.
// Requests from non-browser clients, which send neither header, pass. All
// responses carry a strict Content-Security-Policy (no inline script or
// style), X-Frame-Options: DENY and Cache-Control: no-store.
//
// The raw key of a new key is in one response only: the answer to the
// create (or rotate) request, which is marked Cache-Control: no-store. It is
// never put in a URL or a redirect, and never logged. Without JavaScript
// this works because the form's POST answers with the page that shows the
// key; the page never redirects to it.
//
// Key names are checked by the lifecycle ([apikey.ValidName]): a name with
// control characters, or with the invisible and bidirectional formatting
// characters that can make it display as another name, is refused, and the
// form shows why next to the name field.
//
// # Idempotent creation
//
// A create is safe to repeat, as Stripe's API makes it. The JSON API reads
// the Idempotency-Key header (1 to 255 printable ASCII characters, such as
// a UUID the client generated; see [keyward.CreateParams.IdempotencyKey]).
// The first request creates the key and answers 201 with its raw key. A
// repeat with the same key and the same body creates nothing and answers
// 200 OK with the header Idempotent-Replayed: true and
//
//	{"key": {the key the first request created},
//	 "message": "A key was already created with this Idempotency-Key; …"}
//
// without the raw key, which was shown once. The same key with another
// body is refused with 422 Unprocessable Entity, a problem for the field
// idempotency_key. Idempotency keys are per account and never expire.
//
// The new-key form carries a hidden one-time token, 128 random bits made
// for each form, which it sends as the idempotency key. Posting the form
// again, as reloading the page that showed the key does, creates nothing
// and answers a page that says the key was already created and that its
// raw key was shown once, with a link to the key; it never shows the raw
// key. A form shown again after a validation error keeps its token; a form
// whose token was already used for other values comes back with a new one.
//
// # Audit
//
// The dashboard keeps no audit of its own: every change is made through
// the lifecycle ([keyward.Keys]), which records it, and the dashboard
// says who made it. The context of every lifecycle call of a request
// names the operator as the actor of the change ([audit.WithActor]): an
// [audit.Actor] of type [audit.TypeOperator] whose ID is [Operator.Name].
// So each change is
//
//   - kept in the account's audit trail by the store, atomically with the
//     change itself ([keyward.Owner.Audit], checked with
//     [keyward.Owner.CheckAudit]), and shown in the key's history;
//   - passed to the lifecycle's subscribers ([keyward.WithSubscriber]) as
//     an [audit.Event]: a key created (by the form, the API, or a
//     rotation), updated (with the fields changed, before and after; an
//     update that changes nothing has no event), rotated, revoked, or
//     revoked with all the account's keys (one event per key, with the
//     reason given, if any);
//   - logged by the lifecycle, at Info level ([keyward.WithLogger]), with
//     the actor ("actor=operator:ada@example.com"), the account, the key's
//     ID and display prefix, the reason and the fields changed.
//
// None of them holds a raw key or a hash; metadata is named, never with
// its values. A repeated create, a read, and reading a canary's trips
// change nothing, and have no event. The dashboard's own log
// ([WithLogger]) holds what it refuses and what fails.
//
// An operator name that cannot name an actor (more than
// [audit.MaxActorIDLen] bytes, or control characters) is refused like a
// missing one: the unauthorized handler gets [ErrNoOperator].
//
// # History and requests
//
// A key's page has two sections below its fields.
//
// Requests, last 30 days: the key's requests per UTC day, today
// included, from [keyward.Owner.Usage], as a bar chart drawn on the
// server in SVG (no script): a bar a day, its lower part the requests
// allowed, its upper part those refused after verification (a missing
// scope, the wrong mode, over a limit, outside the key's networks; see
// [store.Counts]). Above it, the total; in it, a title and a description
// that give the span, the total, the refusals and the busiest day to
// assistive technology; below it, the same numbers as a table, in a
// details element. The counts lag by up to the lifecycle's flush
// interval ([keyward.Keys.Flush]). A canary has no requests (its uses
// are its trips): its page says so, and links to its trips.
//
// History: the key's entries of the audit trail, newest first, 20 a page
// (the query parameter history holds the cursor of an older page, and
// the page links to it): when, what happened in words (Created, Edited,
// Rolled, Revoked, Revoked with all keys, Reported exposed), by whom (the
// actor's ID and type: operator, command line, service, reporter, or
// Unknown for a change made without an actor), the reason of a
// revocation, and the fields changed, from and to. Actor IDs, reasons and
// names are shown as text, escaped and isolated (bdi).
//
// The list shows each key's requests of the last 24 hours, from one
// [keyward.Owner.Usage] call for the keys of the page, counted by the
// hour (from the start of the hour 24 hours ago), with the refusals
// beside. A store that fails to give the usage or the trail is logged,
// and the pages say the requests or the history are unavailable, and are
// shown all the same.
//
// # Faces and routes
//
// The routes below are relative to the mount point. The page and the API
// share them: a request is the API's unless it is a form post or a read
// whose Accept header includes text/html, as a browser's does.
//
//	GET   /                     redirects to keys
//	GET   /keys                 list the account's keys, newest first
//	POST  /keys                 create a key
//	GET   /keys/new             the page's form to create a key
//	GET   /keys/revoke-all      the page's confirmation of revoking all keys
//	POST  /keys/revoke-all      revoke every active key of the account
//	GET   /keys/{id}            get a key; the page shows its requests and history too
//	PATCH /keys/{id}            update a key (JSON)
//	GET   /keys/{id}/edit       the page's form to edit a key
//	POST  /keys/{id}/edit       update a key (the form, or JSON)
//	GET   /keys/{id}/revoke     the page's confirmation
//	POST  /keys/{id}/revoke     revoke a key
//	GET   /keys/{id}/rotate     the page's choice of overlap
//	POST  /keys/{id}/rotate     roll a key: a new key, and the old one expires
//	GET   /keys/{id}/trips      the trips of a canary key, newest first
//	GET   /assets/{name}        the stylesheet and the script
//
// # The JSON API
//
// A key is the JSON of [apikey.Record] (which never includes the hash;
// absent times and links are left out) with its status at the time of the
// request:
//
//	{"id": "0190…", "owner": "acct_123", "name": "Production server",
//	 "prefix": "ck_live_abc123", "mode": "live", "scopes": ["sessions:write"],
//	 "metadata": {"integration": "woocommerce"},
//	 "created_at": "2026-11-01T09:30:00Z", "last_used_at": "…",
//	 "revoked_at": "…", "expires_at": "…",
//	 "replaces": "0190…", "replaced_by": "0190…",
//	 "revoked_reason": "Laptop stolen",
//	 "exposure": {"at": "…", "source": "github", "url": "https://github.com/…"},
//	 "canary": true,
//	 "policy": {"rate": {"requests": 100, "period": "1m0s", "burst": 20},
//	            "quota": {"requests": 10000, "per": "day"},
//	            "networks": ["203.0.113.0/24"]},
//	 "status": "revoked"}
//
// replaces names the key this one was rolled from, replaced_by the key it
// was rolled to. revoked_reason, exposure, canary and policy are left out
// unless the key was revoked with a reason, was reported exposed, is a
// canary, or has limits; within policy, a limit the key does not have is
// left out, and so is a burst of 0 (as many as the requests per period). exposure.url is as reported: a client that shows it must treat
// it as untrusted text.
//
// GET /keys takes the query parameters limit (default 100, at most 1000),
// cursor, mode (live or test) and status (active, revoked or expired), and
// answers {"keys": [...], "next_cursor": "…"}; pass next_cursor as cursor
// for the next page; it is absent on the last page.
//
// POST /keys takes {"name": "…", "mode": "live", "scopes": ["…"],
// "metadata": {"key": "value"}, "expires_at": "2030-01-02T15:04:05Z",
// "canary": true, "policy": {…}} (metadata, expires_at, canary and policy
// are optional; canary creates a canary key) and the optional
// Idempotency-Key header, and answers 201 Created with
// {"raw_key": "ck_live_…", "key": {…}} and a Location header. The raw key
// is in this response only. Metadata is at most 50 pairs of strings
// ([apikey.Metadata]). The policy sets the key's limits, in the form the
// key's JSON shows them ([apikey.Policy]): rate.period is a Go duration
// ("1m", "1h30m"; 1 s to 24 h), rate.burst and each limit are optional,
// quota.per is "day" or "month"; null or {} sets none. A policy is part
// of what an Idempotency-Key covers.
//
// PATCH /keys/{id} (or POST /keys/{id}/edit with a JSON body) takes
// {"name": "…", "metadata": {…}, "scopes": ["…"], "expires_at": "…",
// "policy": {…}}, any of them: a field left out (or null) is unchanged.
// metadata replaces the whole set ({} clears it); scopes only narrow, so
// they must be held by the key already; expires_at only moves the expiry
// earlier; policy replaces the key's limits, whole ({} removes them). It
// answers 200 with the key. A revoked key cannot change (409).
//
// POST /keys/{id}/rotate takes {"overlap": "24h", "expires_at": "…"}:
// overlap is a Go duration for which the old key keeps working ("0s" ends
// it at once), at most [keyward.Keys.MaxOverlap] (7 days by default);
// expires_at, optional, is the new key's expiry (by default it keeps the
// old key's). It answers 201 Created with {"raw_key": "…", "key": {the new
// key}, "replaced": {the old key, with its expiry}}.
//
// POST /keys/{id}/revoke takes an optional body {"reason": "…"} (the
// reason is optional too) and answers 200 with the revoked key, which
// keeps the reason. POST /keys/revoke-all takes the same optional body and
// answers 200 with {"keys": [the keys it revoked]}; keys already revoked
// or expired are left as they are. A body that is there must be a JSON
// object with Content-Type: application/json. GET /keys/{id} answers 200
// with the key.
//
// GET /keys/{id}/trips answers 200 with the trips of a canary key, newest
// first (none for a key that is not a canary):
//
//	{"trips": [{"key_id": "0190…", "owner": "acct_123", "at": "…",
//	  "addr": "203.0.113.7:51234", "user_agent": "curl/8.5.0",
//	  "route": "GET /v1/links"}]}
//
// The address, user agent and route are what the client sent, cleaned of
// control and formatting characters and cut to a bounded length
// ([apikey.Trip.Clean]); they are still untrusted text.
//
// # Errors
//
// Errors are RFC 9457 problem details, application/problem+json (written
// by package [github.com/keyward/keyward/problem]), such as
//
//	{"type": "about:blank", "title": "Not Found", "status": 404,
//	 "detail": "No key has this ID."}
//
// The pages answer the same statuses with an HTML page, or the form again
// with the message next to its field.
//
//	Status  When
//	400     an invalid field (see below), or a body that is not a JSON object
//	401     the AuthorizeFunc refused, or named no valid operator
//	403     a cross-origin request, or a change the operator's role does not allow
//	404     no key of the account has this ID: unknown, not a key ID, or another account's
//	405     the method is not allowed on the route (the Allow header lists those that are)
//	406     a JSON client asked for one of the page's forms
//	409     the key is revoked (revocation is final), expired (it cannot be rolled),
//	        already being replaced by an active key (it cannot be rolled again),
//	        or a canary (it cannot be rolled)
//	413     a body over 64 KiB
//	415     a body that is neither JSON nor a form
//	422     an Idempotency-Key reused with another body (the field idempotency_key)
//	503     the key store is unavailable: nothing was changed
//	500     anything else
//
// Details never carry internal error text.
//
// # Invalid field
//
// A request with an invalid field gets 400 (422 for a reused idempotency
// key) and a problem of the type
// https://pkg.go.dev/github.com/keyward/keyward/dashboard#hdr-Invalid_field
// whose extension member "field" names it: name, mode, scopes, metadata,
// expires_at, canary, policy, idempotency_key, overlap, reason, limit,
// cursor or status, history (the cursor of a page of a key's history), or
// an unknown field of the body. The detail of an
// invalid policy says which limit is at fault, in the library's words:
// "policy: network 10.1.2.3/8 has bits set past its length; did you mean
// 10.0.0.0/8?".
//
//	{"type": "https://pkg.go.dev/github.com/keyward/keyward/dashboard#hdr-Invalid_field",
//	 "title": "Invalid field", "status": 400,
//	 "detail": "scopes: the key does not hold links:write, and scopes can only be narrowed; create a new key to grant more",
//	 "field": "scopes"}
//
// On the page, the form is shown again with what was entered and the
// message next to the field, tied to it with aria-describedby and
// aria-invalid, and the page's title starts with "Error: ". The limits
// have a field each (the rate limit's requests, period and burst, the
// quota's requests and period, the networks), and the form shows the
// errors of all of them, and of the metadata, at once.
package dashboard
