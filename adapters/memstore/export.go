package memstore

import (
	"context"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/oidcproxy/oidcproxy/ports"
)

var (
	_ ports.Exporter = (*Store)(nil)
	_ ports.Importer = (*Store)(nil)
)

// Export yields the store's live records (see ports.Exporter). The
// snapshot is taken under the mutex, all at once, and yielded after it is
// released, so a slow consumer never blocks the store.
func (s *Store) Export(ctx context.Context, now time.Time) iter.Seq2[ports.Record, error] {
	return func(yield func(ports.Record, error) bool) {
		records, err := s.snapshot(ctx, now)
		if err != nil {
			yield(ports.Record{}, err)
			return
		}
		for _, r := range records {
			if err := ctx.Err(); err != nil {
				yield(ports.Record{}, fail("export", err))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// snapshot copies the live records in export order.
func (s *Store) snapshot(ctx context.Context, now time.Time) ([]ports.Record, error) {
	if err := s.lock(ctx, "export"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []ports.Record
	for _, id := range slices.Sorted(maps.Keys(s.clients)) {
		c := cloneClient(s.clients[id])
		out = append(out, ports.Record{Client: &c})
	}
	for _, id := range slices.Sorted(maps.Keys(s.keys)) {
		k := cloneKey(s.keys[id])
		out = append(out, ports.Record{SigningKey: &k})
	}
	for _, id := range slices.Sorted(maps.Keys(s.transactions)) {
		if t, ok := s.liveTransaction(id, now); ok {
			t = cloneTransaction(t)
			out = append(out, ports.Record{Transaction: &t})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.grants)) {
		if g, ok := s.liveGrant(id, now); ok {
			g = cloneGrant(g)
			out = append(out, ports.Record{Grant: &g})
		}
	}
	for _, hash := range slices.Sorted(maps.Keys(s.codes)) {
		c := s.codes[hash]
		if _, live := s.liveGrant(c.GrantID, now); live && !expired(now, c.ExpiresAt) {
			c = cloneCode(c)
			out = append(out, ports.Record{Code: &c})
		}
	}
	for _, hash := range slices.Sorted(maps.Keys(s.tokens)) {
		t := s.tokens[hash]
		if _, live := s.liveGrant(t.GrantID, now); live && !expired(now, t.ExpiresAt) {
			t = cloneToken(t)
			out = append(out, ports.Record{RefreshToken: &t})
		}
	}
	for _, u := range s.assertions.live(now) {
		out = append(out, ports.Record{UsedAssertion: &u})
	}
	return out, nil
}

// Import stores records into the empty store in one step (see
// ports.Importer): the whole sequence is read and checked first, then
// stored under the mutex, so nothing of a refused sequence is stored.
func (s *Store) Import(ctx context.Context, records iter.Seq2[ports.Record, error]) (ports.RecordCounts, error) {
	const op = "import"
	if err := s.lock(ctx, op); err != nil {
		return nil, err
	}
	holds := s.counts()
	s.mu.Unlock()
	if holds.Total() > 0 {
		return nil, fail(op, &ports.NotEmptyError{Holds: holds})
	}
	var (
		check ports.ImportCheck
		all   []ports.Record
	)
	for r, err := range records {
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, fail(op, err)
		}
		if _, err := check.Next(r); err != nil {
			return nil, fail(op, err)
		}
		all = append(all, r)
	}
	if err := s.lock(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	// Checked again under the mutex: a write may have come in while the
	// sequence was read.
	if holds := s.counts(); holds.Total() > 0 {
		return nil, fail(op, &ports.NotEmptyError{Holds: holds})
	}
	for _, r := range all {
		s.put(r)
	}
	return check.Counts(), nil
}

// put stores one checked record. The caller holds the mutex.
func (s *Store) put(r ports.Record) {
	switch {
	case r.Client != nil:
		s.clients[r.Client.ID] = cloneClient(*r.Client)
	case r.SigningKey != nil:
		s.keys[r.SigningKey.ID] = cloneKey(*r.SigningKey)
	case r.Transaction != nil:
		s.transactions[r.Transaction.ID] = cloneTransaction(*r.Transaction)
	case r.Grant != nil:
		s.grants[r.Grant.ID] = cloneGrant(*r.Grant)
	case r.Code != nil:
		s.putCode(*r.Code)
	case r.RefreshToken != nil:
		s.putToken(*r.RefreshToken)
	case r.UsedAssertion != nil:
		s.assertions.put(*r.UsedAssertion)
	}
}

// counts counts every stored record, live or not. The caller holds the
// mutex.
func (s *Store) counts() ports.RecordCounts {
	return ports.RecordCounts{
		ports.KindClient:        len(s.clients),
		ports.KindSigningKey:    len(s.keys),
		ports.KindTransaction:   len(s.transactions),
		ports.KindGrant:         len(s.grants),
		ports.KindCode:          len(s.codes),
		ports.KindRefreshToken:  len(s.tokens),
		ports.KindUsedAssertion: s.assertions.len(),
	}
}
