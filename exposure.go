package keyward

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/store"
)

// An Exposure says where a raw key was found in the open: a public
// repository, a paste, a log shipped to a vendor, a support ticket.
type Exposure struct {
	// Source names who found the key, such as "github" or "support".
	// Required: 1 to [apikey.MaxSourceLen] bytes that [apikey.ValidName]
	// accepts.
	Source string
	// URL, if known, points at the place the key was found. Optional: at
	// most [apikey.MaxURLLen] bytes of printable ASCII.
	URL string
}

// An ExposureReport is what [Keys.ReportExposure] did with a report.
type ExposureReport struct {
	// Known reports whether the raw key is one of this store's keys (a
	// true positive). When false, nothing was changed and Record is zero.
	Known bool
	// First reports whether this report changed the key: it marked it
	// exposed or, under [RevokeExposed], revoked it. A repeated report of
	// the same key changes nothing and has First false; the hook of
	// [WithExposureHook] is called only for reports with First true.
	First bool
	// Record is the key after the report: its Exposure says where it was
	// first found, and it is revoked with the reason [apikey.ReasonExposed]
	// unless the policy is [MarkExposed] or the key is a canary.
	Record apikey.Record
}

// An ExposurePolicy says what [Keys.ReportExposure] does to a key found
// exposed.
type ExposurePolicy uint8

// Exposure policies.
const (
	// RevokeExposed revokes an exposed key at once, as GitHub and GitLab do
	// with their own tokens: anyone may have copied it. The default.
	RevokeExposed ExposurePolicy = iota
	// MarkExposed only marks the key exposed and calls the hook, for
	// applications that let the key's owner rotate it first.
	MarkExposed
)

// WithExposurePolicy sets what [Keys.ReportExposure] does to a key found
// exposed. The default is [RevokeExposed].
func WithExposurePolicy(p ExposurePolicy) Option {
	return func(c *config) error {
		if p != RevokeExposed && p != MarkExposed {
			return fmt.Errorf("keyward: unknown exposure policy %d", p)
		}
		c.exposurePolicy = p
		return nil
	}
}

// WithExposureHook sets a function called after a report changed a key
// ([ExposureReport.First]), to tell the key's owner (an email, a webhook,
// a ticket). It runs in the reporting goroutine with the report's context,
// after the change is stored: keep it short, or hand the work off. A panic
// in it is recovered and logged; the report still succeeds.
func WithExposureHook(hook func(ctx context.Context, r ExposureReport)) Option {
	return func(c *config) error {
		if hook == nil {
			return errors.New("keyward: WithExposureHook needs a function")
		}
		c.exposureHook = hook
		return nil
	}
}

// ReportExposure reports that a raw key was found exposed, from wherever
// it was found: a scanner (see package secretscanning for GitHub's), a
// support ticket, an operator. If the key is one of the store's, it is
// marked exposed with e and the time, and revoked at once with the reason
// [apikey.ReasonExposed] (see [WithExposurePolicy]); the hook of
// [WithExposureHook] is then told. A canary key is marked but never
// revoked: a tripwire found in the open stays armed.
//
// Reports are idempotent: a repeat, or a report of a key revoked before,
// changes no more than what is missing, and the first exposure is the one
// kept. Text that is not a key of the format, or a key the store does not
// know, is no error: the report has Known false. Invalid e returns an
// [*InputError]; a store failure an error matching [ErrStoreUnavailable],
// after which the report may be repeated safely. The raw key is never
// logged, kept or put in an error.
func (k *Keys) ReportExposure(ctx context.Context, raw string, e Exposure) (ExposureReport, error) {
	if err := checkActor(ctx); err != nil {
		return ExposureReport{}, err
	}
	exp := apikey.Exposure{At: k.now(), Source: strings.TrimSpace(e.Source), URL: strings.TrimSpace(e.URL)}
	if err := (apikey.Exposure{At: exp.At, Source: exp.Source}).Validate(); err != nil {
		return ExposureReport{}, &InputError{Field: "source", Err: err}
	}
	if err := exp.Validate(); err != nil {
		return ExposureReport{}, &InputError{Field: "url", Err: err}
	}
	mode, err := k.format.Parse(raw)
	if err != nil {
		return ExposureReport{}, nil
	}
	ctx, cancel := k.storeContext(ctx)
	defer cancel()
	h := apikey.HashOf(raw)
	rec, err := k.store.GetByHash(ctx, h)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ExposureReport{}, nil
	case err != nil:
		return ExposureReport{}, &StoreError{Op: "report exposure", Err: err}
	case !rec.Hash.Equal(h) || rec.Mode != mode:
		return ExposureReport{}, nil
	}
	revoke := k.exposurePolicy == RevokeExposed && !rec.Canary
	before := rec
	rec, err = k.store.Expose(ctx, rec.Owner, rec.ID, exp, revoke)
	switch {
	case errors.Is(err, store.ErrAlreadyExposed):
		return ExposureReport{Known: true, Record: rec}, nil
	case errors.Is(err, store.ErrNotFound): // deleted meanwhile
		return ExposureReport{}, nil
	case err != nil:
		return ExposureReport{}, storeError("report exposure", err)
	}
	report := ExposureReport{Known: true, First: true, Record: rec}
	k.emit(ctx, audit.ExposedEvent(before, rec, exp.At, audit.ActorFrom(ctx)))
	if k.exposureHook != nil {
		k.callHook("exposure", func() { k.exposureHook(ctx, report) })
	}
	return report, nil
}

// callHook runs an application's hook, recovering and logging a panic.
func (k *Keys) callHook(name string, hook func()) {
	defer func() {
		if v := recover(); v != nil {
			k.logger.Error("keyward: the "+name+" hook panicked", "panic", fmt.Sprint(v))
		}
	}()
	hook()
}
