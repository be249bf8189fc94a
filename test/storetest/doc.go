// Package storetest is the conformance suite every ports.Store backend
// passes. A backend's test is three lines:
//
//	func TestStoreConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) ports.Store { return memstore.New() })
//	}
//
// The suite pins the contract written in ports/store.go: not-found and
// already-exists errors (checked with errors.Is), a round trip of every field
// of every entity, single use under 32 racing goroutines, rollback and burn
// semantics of the closures, expiry before any sweep, exact sweep counts,
// grant revocation cascading to codes and refresh tokens, defensive copies,
// key ring ordering, and cancelled contexts. Time is always an argument: the
// suite uses a fixed base time and never sleeps.
//
// RunCopy is the suite of the copy capabilities (ports.Exporter and
// ports.Importer): every field of every kind of record through an export
// and an import, expiry, order, single use and reuse detection after a
// copy, refusal of a store that is not empty, atomicity, snapshots. Fill
// and Exported help tests that copy between backends.
//
// Identity claims must be JSON-shaped values (string, float64, bool, nil,
// []any, map[string]any), which is what a verified ID token decodes to and
// what a persistent backend gives back.
package storetest
