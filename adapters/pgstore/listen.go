package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// The listener keeps one connection of its own (outside the pool, which
// hands connections out per query) in LISTEN on the channel that the
// triggers of migrations/0004_notify.sql (and 0007) notify. For each
// notification of this store's schema it forgets the grant or client
// named (the whole cache when none is named) or reports a key-ring change.
//
// It is a plain pgconn connection with WaitForNotification rather than
// github.com/jackc/pgxlisten, because what this needs most is exactly what
// that library leaves to its caller: the moment the connection is lost,
// so that the caches stop serving at once, and a heartbeat, so that a
// connection that died without an error (a host gone, a network
// partition) is noticed too; with those written, its reconnect loop is
// the few lines left.
//
// States: connected (caches.live; the caches serve) and disconnected
// (they do not). On every loss the caches are emptied and the loss is
// logged at Warn and reported to ListenerEvents.Disconnected; the
// listener then reconnects with a backoff (listenRetryMin doubling to
// listenRetryMax). On every return it empties the caches again, reports
// ListenerEvents.Reconnected, and signals a key-ring change, since a
// rotation may have been missed.
//
// While it waits, the listener sends a heartbeat (an empty query) after
// listenHeartbeat without traffic, bounded by min(Options.Timeout,
// listenHeartbeatTimeout): a lost connection is noticed within
// listenHeartbeat plus that bound even if nothing reports it, and
// Options.CacheTTL bounds what could be missed before then.

// Listener timings.
const (
	listenHeartbeat        = time.Second
	listenHeartbeatTimeout = 2 * time.Second
	listenRetryMin         = 100 * time.Millisecond
	listenRetryMax         = 5 * time.Second
)

// notifyChannel is the channel the triggers notify.
const notifyChannel = "oidcproxy"

// change is a notification's payload.
type change struct {
	Schema string  `json:"schema"`
	Table  string  `json:"table"`
	ID     *string `json:"id"`
}

// listener runs the listening connection of one Store.
type listener struct {
	cfg    *pgconn.Config
	target target
	schema string
	cache  *caches
	log    *slog.Logger
	events ListenerEvents
	// keys receives a value after the key ring may have changed; it holds
	// one, so that a burst of changes wakes the reader once.
	keys chan struct{}
	// heartbeatTimeout bounds one heartbeat; timeout one reconnection.
	heartbeatTimeout, timeout time.Duration

	cancel context.CancelFunc
	done   chan struct{}
}

// startListener connects the listening connection within ctx and
// Options.Timeout (so that Open fails clearly on a database that refuses
// it) and keeps it going in the background until stop.
func startListener(ctx context.Context, cfg *pgconn.Config, opts Options, t target, schema string, cache *caches) (*listener, error) {
	cfg.RuntimeParams["application_name"] = listenerName(cfg.RuntimeParams["application_name"])
	if opts.dial != nil {
		cfg.DialFunc = opts.dial
	}
	l := &listener{
		cfg:              cfg,
		target:           t,
		schema:           schema,
		cache:            cache,
		log:              opts.Logger,
		events:           opts.Events,
		keys:             make(chan struct{}, 1),
		heartbeatTimeout: min(opts.Timeout, listenHeartbeatTimeout),
		timeout:          opts.Timeout,
		done:             make(chan struct{}),
	}
	cfg.OnNotification = l.handle
	connectCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	conn, err := l.connect(connectCtx)
	cancel()
	if err != nil {
		return nil, connectionError(err, t)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = stop
	l.up(false)
	go l.run(runCtx, conn)
	return l, nil
}

// listenerName is the application_name of the listening connection: the
// pool's, marked, so that it can be told apart in pg_stat_activity.
func listenerName(pool string) string {
	if pool == "" {
		pool = "oidcproxy"
	}
	return pool + " listener"
}

// stop ends the listener and waits for it; the caches stop serving.
func (l *listener) stop() {
	l.cancel()
	<-l.done
}

// connect opens the connection and starts listening.
func (l *listener) connect(ctx context.Context) (*pgconn.PgConn, error) {
	conn, err := pgconn.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	if err := conn.Exec(ctx, "LISTEN "+notifyChannel).Close(); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// run waits on conn until it fails, then reconnects, until ctx ends.
func (l *listener) run(ctx context.Context, conn *pgconn.PgConn) {
	defer close(l.done)
	for {
		err := l.wait(ctx, conn)
		l.down(ctx, err)
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.heartbeatTimeout)
		_ = conn.Close(closeCtx)
		cancel()
		if conn = l.reconnect(ctx); conn == nil {
			return
		}
		l.up(true)
	}
}

// wait receives notifications (handled by l.handle as they are read) and
// sends heartbeats, until the connection fails or ctx ends.
func (l *listener) wait(ctx context.Context, conn *pgconn.PgConn) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, listenHeartbeat)
		err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			continue
		case !pgconn.Timeout(err):
			return err
		}
		pingCtx, cancel := context.WithTimeout(ctx, l.heartbeatTimeout)
		err = conn.Ping(pingCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("heartbeat: %w", err)
		}
	}
}

// reconnect tries until it has a listening connection (nil: ctx ended).
func (l *listener) reconnect(ctx context.Context) *pgconn.PgConn {
	delay := listenRetryMin
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		connectCtx, cancel := context.WithTimeout(ctx, l.timeout)
		conn, err := l.connect(connectCtx)
		cancel()
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		l.log.Debug("pgstore: the notification connection cannot be restored yet", "error", connectionError(err, l.target).Error())
		delay = min(2*delay, listenRetryMax)
	}
}

// up marks the caches usable, empty; after a loss it also reports the
// return and a possible key-ring change.
func (l *listener) up(again bool) {
	l.cache.forgetAll()
	l.cache.live.Store(true)
	if !again {
		return
	}
	l.log.Info("pgstore: the notification connection is back; caches emptied, signing keys reloaded", "database", l.target.String())
	if l.events.Reconnected != nil {
		l.events.Reconnected()
	}
	l.keyRingChanged()
}

// down stops the caches serving and empties them. err is why; a stop
// (ctx ended) is no loss to report.
func (l *listener) down(ctx context.Context, err error) {
	l.cache.live.Store(false)
	l.cache.forgetAll()
	if ctx.Err() != nil {
		return
	}
	l.log.Warn("pgstore: lost the notification connection; caches bypassed until it is back",
		"database", l.target.String(), "error", scrub(oneLine(err.Error()), l.target.password))
	if l.events.Disconnected != nil {
		l.events.Disconnected()
	}
}

// handle applies one notification. It runs on the listener's goroutine,
// inside the connection's read: it must not use the connection.
func (l *listener) handle(_ *pgconn.PgConn, n *pgconn.Notification) {
	if n.Channel != notifyChannel {
		return
	}
	var c change
	if err := json.Unmarshal([]byte(n.Payload), &c); err != nil {
		// Not one of our triggers' payloads: someone else notifies the
		// channel. Forgetting everything is always safe.
		l.log.Debug("pgstore: unexpected notification; caches emptied", "error", err)
		l.cache.forgetAll()
		return
	}
	if c.Schema != l.schema {
		return
	}
	switch c.Table {
	case "grants":
		if c.ID == nil {
			l.cache.grants.ForgetAll()
		} else {
			l.cache.grants.Forget(*c.ID)
		}
	case "clients":
		if c.ID == nil {
			l.cache.clients.ForgetAll()
		} else {
			l.cache.clients.Forget(*c.ID)
		}
	case "signing_keys":
		l.keyRingChanged()
	default:
		l.cache.forgetAll()
	}
}

// keyRingChanged signals KeyRingChanges without blocking: one pending
// signal is enough, the reader reloads the whole ring.
func (l *listener) keyRingChanged() {
	select {
	case l.keys <- struct{}{}:
	default:
	}
}

// KeyRingChanges returns a channel that receives a value soon after any
// instance changed the stored signing key ring (a rotation, a prune), and
// after the listening connection came back from a loss (a change may have
// been missed): the receiver reloads the ring. Values do not queue up: a
// burst of changes is one value. Without Options.Listen the channel never
// receives. There is one channel per store, for one reader.
func (s *Store) KeyRingChanges() <-chan struct{} {
	if s.listener == nil {
		return nil
	}
	return s.listener.keys
}
