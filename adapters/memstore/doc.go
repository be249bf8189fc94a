// Package memstore is an in-memory implementation of ports.Store: maps
// behind one mutex. It keeps nothing across restarts, so it suits tests,
// `oidcproxy dev` and single-process demos; production uses boltstore.
//
// Every value is copied on the way in and on the way out (slices, byte
// slices and the identity claims map included), so callers can never reach
// stored state through a pointer they were given or gave. Times are stored
// in UTC without a monotonic reading, the same form a persistent backend
// returns them in.
package memstore
