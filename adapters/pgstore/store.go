package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Defaults for Options.
const (
	// DefaultMaxConns bounds the pool of one instance. Every redemption and
	// rotation holds a connection for two round trips; ten connections keep
	// a 2-core database busy, and three instances stay far below
	// PostgreSQL's default max_connections of 100.
	DefaultMaxConns = 10
	// DefaultTimeout bounds connecting and every store call (each query,
	// and the wait for a pooled connection).
	DefaultTimeout = 5 * time.Second
	// DefaultCacheTTL bounds how long a cached grant or client is served
	// without reading it again (see Options.CacheTTL).
	DefaultCacheTTL = 5 * time.Second
)

// Options configure Open.
type Options struct {
	// URL is the connection URL, postgres://user:password@host:port/db?…
	// (libpq's URL form: sslmode, search_path and the other parameters
	// apply). It is a secret: errors never quote its password.
	URL string
	// MaxConns bounds the connection pool (default DefaultMaxConns).
	MaxConns int
	// Timeout bounds connecting and each store call (default
	// DefaultTimeout). The server enforces it too, as statement_timeout and
	// idle_in_transaction_session_timeout, so a stalled client cannot hold
	// row locks longer.
	Timeout time.Duration

	// Listen makes the store keep one more connection, outside the pool,
	// that LISTENs for the changes other instances commit (see
	// listen.go). Only then does the store cache grants and clients in
	// memory, and KeyRingChanges report rotations: a server wants it; a
	// command that opens the store for a moment does not.
	Listen bool
	// CacheTTL bounds how long a cached grant or client is served before
	// it is read again (default DefaultCacheTTL), whatever the
	// notifications say: a change whose notification was lost (a
	// connection that died silently) is in force everywhere within it.
	CacheTTL time.Duration
	// Logger receives the listener's warnings (the connection lost,
	// restored); nil discards them.
	Logger *slog.Logger
	// Events are told when the listening connection is lost and when it
	// is back, for metrics.
	Events ListenerEvents

	// dial, when set, connects the listening connection instead of the
	// driver's dialer (tests cut it apart from the pool).
	dial pgconn.DialFunc
}

// ListenerEvents are callbacks for the listening connection's changes of
// state; either may be nil. They are called from the listener's goroutine
// and must not block.
type ListenerEvents struct {
	// Disconnected: the connection was lost (or a heartbeat went
	// unanswered); the caches are bypassed until it is back.
	Disconnected func()
	// Reconnected: the connection is back; the caches start empty.
	Reconnected func()
}

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Store is a ports.Store on a PostgreSQL database. It is safe for
// concurrent use, by many goroutines and by many processes sharing the
// database.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	// schema is where the store's tables are: notifications from other
	// schemas are not ours, and the sweep lock is per schema.
	schema string
	// cache holds grants and clients while the listener is connected;
	// nil without Options.Listen.
	cache *caches
	// listener runs while the store is open; nil without Options.Listen.
	listener *listener
	// claims and rotations group concurrent redemptions' claims and plain
	// rotations into batches of one round trip and one commit.
	claims, rotations *batcher
	// clientReads and grantReads coalesce the cache's concurrent misses
	// of one record into one read.
	clientReads reads[domain.Client]
	grantReads  reads[domain.Grant]
}

var _ ports.Store = (*Store)(nil)

// Open connects to the database, applies the schema migrations this binary
// carries (under an advisory lock, so instances starting together take
// turns) and returns the store. It fails if the database's schema is newer
// than this binary knows (ErrSchemaTooNew). Connection failures are
// *ConnectionError: one line, without the password. With Options.Listen,
// Open also connects the listening connection (see listen.go). Close
// releases the pool and stops the listener.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	cfg, target, err := poolConfig(opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, connectionError(err, target)
	}
	if err := migrate(ctx, pool, opts.Timeout, target); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, timeout: opts.Timeout}
	s.claims = newBatcher(pool, sqlClaimCode, opts.Timeout, batchSlots(opts.MaxConns), maxBatch)
	s.rotations = newBatcher(pool, sqlRotatePlain, opts.Timeout, batchSlots(opts.MaxConns), maxBatch)
	if s.schema, err = tableSchema(ctx, pool, opts.Timeout); err != nil {
		pool.Close()
		return nil, connectionError(err, target)
	}
	if opts.Listen {
		s.cache = newCaches(opts.CacheTTL)
		s.listener, err = startListener(ctx, cfg.ConnConfig.Config.Copy(), opts, target, s.schema, s.cache)
		if err != nil {
			pool.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close stops the listener and closes the pool, waiting for connections
// in use to be returned.
func (s *Store) Close() {
	if s.listener != nil {
		s.listener.stop()
	}
	s.pool.Close()
}

// tableSchema names the schema in which the store's tables are found
// (the first of search_path that holds them).
func tableSchema(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var schema string
	err := pool.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass('grants')`).Scan(&schema)
	return schema, err
}

// Ping checks that a connection can be had and answers, within the
// timeout: the readiness probe. Its error wraps ports.ErrUnavailable when
// the database is down.
func (s *Store) Ping(ctx context.Context) error {
	const op = "ping"
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fail(op, err)
	}
	return nil
}

// bound limits one store call to the configured timeout.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// target is what error messages may say about the database: where it is
// and whom we connect as, and the password they must never contain.
type target struct {
	addr, user, database, password string
}

// poolConfig parses the URL and sets the pool up: size, timeouts (client
// and server side), prepared statements, and an application name that
// shows in pg_stat_activity.
func poolConfig(opts Options) (*pgxpool.Config, target, error) {
	raw := strings.TrimSpace(opts.URL)
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return nil, target{}, &ConnectionError{Problem: "the database URL must start with postgres:// or postgresql://"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		var urlErr *url.Error
		detail := err
		if errors.As(err, &urlErr) {
			detail = urlErr.Err // without the URL itself, which holds the password
		}
		return nil, target{}, &ConnectionError{Problem: "the database URL is malformed: " + scrub(detail.Error(), "")}
	}
	password, _ := u.User.Password()
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, target{}, &ConnectionError{Problem: "the database URL is malformed: " + oneLine(scrub(err.Error(), password))}
	}
	cc := cfg.ConnConfig
	t := target{
		addr:     net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))),
		user:     cc.User,
		database: cc.Database,
		password: password,
	}
	cfg.MaxConns = int32(min(opts.MaxConns, 1<<20))
	cc.ConnectTimeout = opts.Timeout
	ms := strconv.FormatInt(opts.Timeout.Milliseconds(), 10)
	for k, v := range map[string]string{
		"application_name":                    "oidcproxy",
		"statement_timeout":                   ms,
		"idle_in_transaction_session_timeout": ms,
	} {
		if _, set := cc.RuntimeParams[k]; !set {
			cc.RuntimeParams[k] = v
		}
	}
	// Every statement outside rwTx is a transaction of its own at the
	// session's default level, and the single-statement redemption and
	// rotation rely on READ COMMITTED as rwTx does (sqlBegin): a waiter
	// re-reads the row it waited for and matches nothing, where a stricter
	// level would fail it with a serialization error. So it is set here,
	// whatever the server's or the URL's default.
	cc.RuntimeParams["default_transaction_isolation"] = "read committed"
	return cfg, t, nil
}

// String names the database for messages: host:port/database.
func (t target) String() string {
	return fmt.Sprintf("%s/%s", t.addr, t.database)
}
