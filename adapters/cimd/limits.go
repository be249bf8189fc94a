package cimd

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Defaults of the outbound fetch limits.
const (
	// DefaultMaxConcurrentFetches bounds the fetches in flight at once,
	// whatever their hosts: every distinct client_id URL (a query string
	// makes a new one) would otherwise open its own connection.
	DefaultMaxConcurrentFetches = 16
	// DefaultMaxConcurrentPerHost bounds the fetches in flight to one host.
	DefaultMaxConcurrentPerHost = 2
	// DefaultHostBurst and DefaultHostInterval rate-limit fetches per host:
	// up to DefaultHostBurst at once, then one per DefaultHostInterval. A
	// legitimate host serves a handful of documents, each cached for
	// minutes; a flood of distinct URLs is an attack.
	DefaultHostBurst    = 10
	DefaultHostInterval = time.Second
	// DefaultHostFailureTTL is how long a host that failed (unreachable,
	// refused address, timeout, 5xx or 429) is not contacted again, for
	// any URL.
	DefaultHostFailureTTL = 30 * time.Second
)

// maxTrackedHosts bounds the per-host state: idle hosts are forgotten
// when it is reached, and new hosts are refused while every tracked one is
// still busy, rate-limited or failing.
const maxTrackedHosts = 4096

// ErrBusy: a fetch was refused because the global or per-host limits are
// reached. It comes wrapped in a temporarily_unavailable *domain.Error, and
// is never cached: the same URL may be fetched as soon as there is room.
var ErrBusy = errors.New("too many client metadata document fetches; try again shortly")

// hostFailure marks an error that says the host itself is failing rather
// than one document being wrong, so the host is avoided for a while.
type hostFailure struct{ err error }

func (h *hostFailure) Error() string { return h.err.Error() }
func (h *hostFailure) Unwrap() error { return h.err }

// failedHost wraps err as a hostFailure.
func failedHost(err error) error { return &hostFailure{err: err} }

// hostFailing reports whether a fetch outcome should count against its
// host: the transport failed, or the server said it cannot serve now.
func hostFailing(err error) bool {
	var hf *hostFailure
	return errors.As(err, &hf)
}

// statusFailsHost reports whether a status says the host, not the
// document, is the problem.
func statusFailsHost(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests
}

// limiter enforces the global and per-host bounds on outbound fetches and
// remembers failing hosts.
type limiter struct {
	opts   Options
	global chan struct{}

	mu    sync.Mutex
	hosts map[string]*hostState
}

// hostState is one host's share: fetches in flight, rate tokens, and a
// recent failure.
type hostState struct {
	active      int
	tokens      float64
	refilled    time.Time
	failedUntil time.Time
	failure     error
}

func newLimiter(opts Options) *limiter {
	return &limiter{opts: opts, global: make(chan struct{}, opts.MaxConcurrentFetches), hosts: map[string]*hostState{}}
}

// acquire admits one fetch to host, or says why not: a remembered failure
// of the host, or a temporarily_unavailable error wrapping ErrBusy. It
// never waits, so that excess is answered at once. release must be called
// with the fetch's outcome.
func (l *limiter) acquire(host string) (release func(outcome error), err error) {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.hosts[host]
	if !ok {
		if len(l.hosts) >= maxTrackedHosts {
			l.forgetIdle(now)
		}
		if len(l.hosts) >= maxTrackedHosts {
			return nil, busy(host)
		}
		st = &hostState{tokens: float64(l.opts.HostBurst), refilled: now}
		l.hosts[host] = st
	}
	if now.Before(st.failedUntil) {
		return nil, fmt.Errorf("host failed recently: %w", st.failure)
	}
	st.refill(now, l.opts)
	if st.active >= l.opts.MaxConcurrentPerHost || st.tokens < 1 {
		return nil, busy(host)
	}
	select {
	case l.global <- struct{}{}:
	default:
		return nil, busy(host)
	}
	st.active++
	st.tokens--
	return func(outcome error) {
		<-l.global
		l.mu.Lock()
		defer l.mu.Unlock()
		st.active--
		if hostFailing(outcome) {
			st.failedUntil = l.opts.Now().Add(l.opts.HostFailureTTL)
			st.failure = outcome
		}
	}, nil
}

// refill adds the rate tokens earned since the last refill.
func (st *hostState) refill(now time.Time, opts Options) {
	if elapsed := now.Sub(st.refilled); elapsed > 0 {
		st.tokens = min(float64(opts.HostBurst), st.tokens+float64(elapsed)/float64(opts.HostInterval))
		st.refilled = now
	}
}

// forgetIdle drops hosts that have nothing worth remembering: no fetch in
// flight, no recent failure, and a full rate bucket. Called with l.mu held.
func (l *limiter) forgetIdle(now time.Time) {
	for host, st := range l.hosts {
		st.refill(now, l.opts)
		if st.active == 0 && !now.Before(st.failedUntil) && st.tokens >= float64(l.opts.HostBurst) {
			delete(l.hosts, host)
		}
	}
}

// busy is the refusal of a fetch beyond the limits.
func busy(host string) error {
	return domain.ErrTemporarilyUnavailable("the application's client metadata document cannot be fetched right now; try again shortly",
		fmt.Errorf("cimd: fetch client metadata from %s: %w", host, ErrBusy))
}
