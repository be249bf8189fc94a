package boltstore

// Callbacks get deep copies of decoded records (the Clone methods of the
// domain types), so that nothing they do to their arguments reaches what is
// stored or returned. Cloning in memory is several times cheaper than
// decoding the JSON again, and decoding is the largest cost inside the
// hot-path transactions.
