package boltstore

// DisableBatch makes the hot paths commit with a plain db.Update per call,
// so the benchmarks can measure what group commit buys. Test builds only.
func DisableBatch(s *Store) { s.noBatch = true }
