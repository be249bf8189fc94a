package pgstore

import "github.com/jackc/pgx/v5/pgconn"

// WithListenerDial returns opts whose listening connection is made by
// dial, so that a test can cut it apart from the pool.
func WithListenerDial(opts Options, dial pgconn.DialFunc) Options {
	opts.dial = dial
	return opts
}

// SweepLockKey is the sweep's advisory lock key for a schema.
var SweepLockKey = sweepLockKey
