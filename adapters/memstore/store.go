package memstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Store is an in-memory ports.Store. The zero value is not usable; call New.
type Store struct {
	mu           sync.Mutex
	clients      map[string]domain.Client
	transactions map[string]domain.Transaction
	grants       map[string]domain.Grant
	codes        map[string]domain.AuthorizationCode
	tokens       map[string]domain.RefreshToken
	keys         map[string]domain.SigningKey
	// codesByGrant and tokensByGrant index the children of each grant, so
	// that revoking or sweeping a grant deletes them without a full scan and
	// memory stays bounded by what is live.
	codesByGrant  map[string]map[string]struct{}
	tokensByGrant map[string]map[string]struct{}
	// registered counts the clients that registered themselves (not an
	// operator's), for RegisterClient's bound.
	registered int
	// assertions has locks of its own (see assertions.go).
	assertions assertionIDs
}

var _ ports.Store = (*Store)(nil)

// errEmptyKey refuses records without a key: they could never be read back.
var errEmptyKey = errors.New("empty key")

// New returns an empty store.
func New() *Store {
	return &Store{
		clients:       map[string]domain.Client{},
		transactions:  map[string]domain.Transaction{},
		grants:        map[string]domain.Grant{},
		codes:         map[string]domain.AuthorizationCode{},
		tokens:        map[string]domain.RefreshToken{},
		keys:          map[string]domain.SigningKey{},
		codesByGrant:  map[string]map[string]struct{}{},
		tokensByGrant: map[string]map[string]struct{}{},
	}
}

// expired is the one expiry rule of the store, the same as
// domain.Transaction.Expired: a record is dead from its ExpiresAt on.
func expired(now, expiresAt time.Time) bool { return !now.Before(expiresAt) }

func fail(op string, err error) error { return fmt.Errorf("memstore: %s: %w", op, err) }

// lock checks ctx before taking the mutex, so a cancelled request does no work.
func (s *Store) lock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fail(op, err)
	}
	s.mu.Lock()
	return nil
}

// CreateClient stores a new client; domain.ErrAlreadyExists if the id is taken.
func (s *Store) CreateClient(ctx context.Context, c domain.Client) error {
	const op = "create client"
	if c.ID == "" {
		return fail(op, errEmptyKey)
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.insertClient(op, c, 0)
}

// GetClient returns a client by id.
func (s *Store) GetClient(ctx context.Context, id string) (domain.Client, error) {
	const op = "get client"
	if err := s.lock(ctx, op); err != nil {
		return domain.Client{}, err
	}
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return domain.Client{}, fail(op, domain.ErrNotFound)
	}
	return cloneClient(c), nil
}

// CreateTransaction stores a new transaction; domain.ErrAlreadyExists on a duplicate id.
func (s *Store) CreateTransaction(ctx context.Context, t domain.Transaction) error {
	const op = "create transaction"
	if t.ID == "" {
		return fail(op, errEmptyKey)
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.transactions[t.ID]; ok {
		return fail(op, domain.ErrAlreadyExists)
	}
	s.transactions[t.ID] = cloneTransaction(t)
	return nil
}

// liveTransaction returns the transaction id if it exists and has not
// expired. The caller holds the mutex.
func (s *Store) liveTransaction(id string, now time.Time) (domain.Transaction, bool) {
	t, ok := s.transactions[id]
	if !ok || t.Expired(now) {
		return domain.Transaction{}, false
	}
	return t, true
}

// UpdateTransaction applies fn to a copy of the stored transaction and saves
// the copy only if fn succeeds. fn's error is returned as is.
func (s *Store) UpdateTransaction(ctx context.Context, id string, now time.Time, fn func(*domain.Transaction) error) error {
	const op = "update transaction"
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	t, ok := s.liveTransaction(id, now)
	if !ok {
		return fail(op, domain.ErrNotFound)
	}
	next := cloneTransaction(t)
	if err := fn(&next); err != nil {
		return err
	}
	if next.ID != id {
		return fail(op, errors.New("the update changed the transaction id"))
	}
	s.transactions[id] = cloneTransaction(next)
	return nil
}

// ConsumeTransaction deletes the transaction and returns it. A check error
// still deletes it (single use) and is returned as is.
func (s *Store) ConsumeTransaction(ctx context.Context, id string, now time.Time, check func(domain.Transaction) error) (domain.Transaction, error) {
	const op = "consume transaction"
	if err := s.lock(ctx, op); err != nil {
		return domain.Transaction{}, err
	}
	defer s.mu.Unlock()
	t, ok := s.liveTransaction(id, now)
	if !ok {
		return domain.Transaction{}, fail(op, domain.ErrNotFound)
	}
	delete(s.transactions, id)
	if check != nil {
		if err := check(cloneTransaction(t)); err != nil {
			return domain.Transaction{}, err
		}
	}
	return cloneTransaction(t), nil
}

// ReplaceTransaction consumes oldID and stores the transaction check
// returns, which it also returns. A check error burns oldID and is returned
// as is. A replacement without an id, or whose id is taken by another live
// record, changes nothing.
func (s *Store) ReplaceTransaction(ctx context.Context, oldID string, now time.Time, check func(domain.Transaction) (domain.Transaction, error)) (domain.Transaction, error) {
	const op = "replace transaction"
	if err := s.lock(ctx, op); err != nil {
		return domain.Transaction{}, err
	}
	defer s.mu.Unlock()
	old, ok := s.liveTransaction(oldID, now)
	if !ok {
		return domain.Transaction{}, fail(op, domain.ErrNotFound)
	}
	next, err := check(cloneTransaction(old))
	if err != nil {
		delete(s.transactions, oldID)
		return domain.Transaction{}, err
	}
	if next.ID == "" {
		return domain.Transaction{}, fail(op, errEmptyKey)
	}
	if _, taken := s.transactions[next.ID]; taken && next.ID != oldID {
		return domain.Transaction{}, fail(op, domain.ErrAlreadyExists)
	}
	delete(s.transactions, oldID)
	s.transactions[next.ID] = cloneTransaction(next)
	return cloneTransaction(next), nil
}

// CreateGrant stores a new grant and its first authorization code together.
func (s *Store) CreateGrant(ctx context.Context, g domain.Grant, code domain.AuthorizationCode) error {
	const op = "create grant"
	switch {
	case g.ID == "" || code.Hash == "":
		return fail(op, errEmptyKey)
	case code.GrantID != g.ID:
		return fail(op, errors.New("the code belongs to another grant"))
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.grants[g.ID]; ok {
		return fail(op, domain.ErrAlreadyExists)
	}
	if _, ok := s.codes[code.Hash]; ok {
		return fail(op, domain.ErrAlreadyExists)
	}
	s.grants[g.ID] = cloneGrant(g)
	s.putCode(code)
	s.markClientUsed(g.ClientID, g.CreatedAt)
	return nil
}

// CreateDirectGrant stores a new grant without a code.
func (s *Store) CreateDirectGrant(ctx context.Context, g domain.Grant) error {
	const op = "create direct grant"
	if g.ID == "" {
		return fail(op, errEmptyKey)
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.grants[g.ID]; ok {
		return fail(op, domain.ErrAlreadyExists)
	}
	s.grants[g.ID] = cloneGrant(g)
	return nil
}

// putCode stores a code and indexes it under its grant. The caller holds
// the mutex.
func (s *Store) putCode(c domain.AuthorizationCode) {
	s.codes[c.Hash] = cloneCode(c)
	addChild(s.codesByGrant, c.GrantID, c.Hash)
}

// putToken stores a refresh token and indexes it under its grant. The
// caller holds the mutex.
func (s *Store) putToken(r domain.RefreshToken) {
	s.tokens[r.Hash] = cloneToken(r)
	addChild(s.tokensByGrant, r.GrantID, r.Hash)
}

func addChild(index map[string]map[string]struct{}, grantID, key string) {
	set := index[grantID]
	if set == nil {
		set = map[string]struct{}{}
		index[grantID] = set
	}
	set[key] = struct{}{}
}

func removeChild(index map[string]map[string]struct{}, grantID, key string) {
	set := index[grantID]
	delete(set, key)
	if len(set) == 0 {
		delete(index, grantID)
	}
}

// liveGrant returns the grant if it exists and has not expired. The caller
// holds the mutex.
func (s *Store) liveGrant(id string, now time.Time) (domain.Grant, bool) {
	g, ok := s.grants[id]
	if !ok || g.Expired(now) {
		return domain.Grant{}, false
	}
	return g, true
}

// GetGrant returns a live grant.
func (s *Store) GetGrant(ctx context.Context, id string, now time.Time) (domain.Grant, error) {
	const op = "get grant"
	if err := s.lock(ctx, op); err != nil {
		return domain.Grant{}, err
	}
	defer s.mu.Unlock()
	g, ok := s.liveGrant(id, now)
	if !ok {
		return domain.Grant{}, fail(op, domain.ErrNotFound)
	}
	return cloneGrant(g), nil
}

// RevokeGrant deletes a grant with its codes and refresh tokens.
func (s *Store) RevokeGrant(ctx context.Context, id string) error {
	if err := s.lock(ctx, "revoke grant"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.deleteGrant(id)
	return nil
}

// deleteGrant removes a grant and every child, returning how many records
// went. The caller holds the mutex.
func (s *Store) deleteGrant(id string) int {
	n := 0
	if _, ok := s.grants[id]; ok {
		delete(s.grants, id)
		n++
	}
	for hash := range s.codesByGrant[id] {
		delete(s.codes, hash)
		n++
	}
	for hash := range s.tokensByGrant[id] {
		delete(s.tokens, hash)
		n++
	}
	delete(s.codesByGrant, id)
	delete(s.tokensByGrant, id)
	return n
}

// RedeemCode marks the code redeemed and stores the refresh token issue
// returns, under the store's lock. issue sees the code as it will be
// stored (RedeemedAt = now). A check or issue error burns the code with its
// grant; a replay that check accepts revokes the grant. See
// ports.GrantStore for the whole contract.
func (s *Store) RedeemCode(ctx context.Context, hash string, now time.Time, use domain.CodeUse) (domain.AuthorizationCode, domain.Grant, error) {
	const op = "redeem code"
	if err := s.lock(ctx, op); err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, err
	}
	defer s.mu.Unlock()
	code, ok := s.codes[hash]
	if !ok || expired(now, code.ExpiresAt) {
		return domain.AuthorizationCode{}, domain.Grant{}, fail(op, domain.ErrNotFound)
	}
	g, ok := s.liveGrant(code.GrantID, now)
	if !ok {
		return domain.AuthorizationCode{}, domain.Grant{}, fail(op, domain.ErrNotFound)
	}
	if code.Redeemed() {
		if use.Check(cloneCode(code)) == nil {
			s.deleteGrant(g.ID)
		}
		return cloneCode(code), cloneGrant(g), fail(op, domain.ErrAlreadyConsumed)
	}
	if err := use.Check(cloneCode(code)); err != nil {
		s.deleteGrant(g.ID)
		return domain.AuthorizationCode{}, domain.Grant{}, err
	}
	code.RedeemedAt = utc(now)
	rt, err := use.Issue(cloneCode(code), cloneGrant(g))
	if err != nil {
		s.deleteGrant(g.ID)
		return domain.AuthorizationCode{}, domain.Grant{}, err
	}
	if rt != nil {
		switch {
		case rt.Hash == "":
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, errEmptyKey)
		case rt.GrantID != g.ID:
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, errors.New("the refresh token belongs to another grant"))
		}
		if _, taken := s.tokens[rt.Hash]; taken {
			return domain.AuthorizationCode{}, domain.Grant{}, fail(op, domain.ErrAlreadyExists)
		}
		s.putToken(*rt)
	}
	s.codes[hash] = code
	return cloneCode(code), cloneGrant(g), nil
}

// RotateRefreshToken applies domain.DecideRefresh to the presented token
// and its successor under the store's lock: a rotation or a retry stores
// the token rotate returns (a retry withdraws the unused successor), a
// reuse revokes the grant, a foreign client changes nothing. See
// ports.GrantStore for the whole contract.
func (s *Store) RotateRefreshToken(ctx context.Context, hash string, now time.Time, use domain.RefreshUse, rotate domain.Rotator) (domain.RefreshToken, domain.RefreshDecision, error) {
	const op = "rotate refresh token"
	if err := s.lock(ctx, op); err != nil {
		return domain.RefreshToken{}, 0, err
	}
	defer s.mu.Unlock()
	old, ok := s.tokens[hash]
	if !ok || expired(now, old.ExpiresAt) {
		return domain.RefreshToken{}, 0, fail(op, domain.ErrNotFound)
	}
	g, ok := s.liveGrant(old.GrantID, now)
	if !ok {
		return domain.RefreshToken{}, 0, fail(op, domain.ErrNotFound)
	}
	var prev domain.RefreshToken
	if old.SuccessorHash != "" {
		prev = s.tokens[old.SuccessorHash]
	}
	decision := domain.DecideRefresh(old, prev, use, now)
	switch decision {
	case domain.RefreshRevoke:
		s.deleteGrant(g.ID)
		return cloneToken(old), decision, fail(op, domain.ErrAlreadyConsumed)
	case domain.RefreshRefuse:
		return cloneToken(old), decision, fail(op, domain.ErrWrongClient)
	}
	next := cloneGrant(g)
	succ, err := rotate.Rotate(cloneToken(old), &next)
	if err != nil {
		return domain.RefreshToken{}, decision, err
	}
	switch {
	case succ.Hash == "":
		return domain.RefreshToken{}, decision, fail(op, errEmptyKey)
	case succ.GrantID != g.ID || next.ID != g.ID:
		return domain.RefreshToken{}, decision, fail(op, errors.New("the rotation moved the token to another grant"))
	}
	if _, taken := s.tokens[succ.Hash]; taken {
		return domain.RefreshToken{}, decision, fail(op, domain.ErrAlreadyExists)
	}
	if decision == domain.RefreshRetry {
		prev.RotatedAt, prev.SuccessorHash = utc(now), ""
		s.tokens[prev.Hash] = prev
	} else {
		old.RotatedAt = utc(now)
	}
	old.SuccessorHash = succ.Hash
	s.tokens[hash] = old
	s.putToken(succ)
	s.grants[g.ID] = cloneGrant(next)
	return cloneToken(succ), decision, nil
}

// GetRefreshToken returns a refresh token (live or rotated) whose grant is live.
func (s *Store) GetRefreshToken(ctx context.Context, hash string, now time.Time) (domain.RefreshToken, error) {
	const op = "get refresh token"
	if err := s.lock(ctx, op); err != nil {
		return domain.RefreshToken{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.tokens[hash]
	if !ok || expired(now, r.ExpiresAt) {
		return domain.RefreshToken{}, fail(op, domain.ErrNotFound)
	}
	if _, ok := s.liveGrant(r.GrantID, now); !ok {
		return domain.RefreshToken{}, fail(op, domain.ErrNotFound)
	}
	return cloneToken(r), nil
}

// ListKeys returns every signing key, oldest first (ties by id).
func (s *Store) ListKeys(ctx context.Context) ([]domain.SigningKey, error) {
	if err := s.lock(ctx, "list keys"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]domain.SigningKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, cloneKey(k))
	}
	slices.SortFunc(out, func(a, b domain.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// PutKey creates or replaces a key.
func (s *Store) PutKey(ctx context.Context, k domain.SigningKey) error {
	const op = "put key"
	if k.ID == "" {
		return fail(op, errEmptyKey)
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.keys[k.ID] = cloneKey(k)
	return nil
}

// DeleteKey removes a key; absent is not an error.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	if err := s.lock(ctx, "delete key"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.keys, id)
	return nil
}

// Sweep removes every transaction, grant, code and refresh token expired at
// now, and the children of expired grants, and reports how many records it
// removed.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	if err := s.lock(ctx, "sweep"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for id, t := range s.transactions {
		if t.Expired(now) {
			delete(s.transactions, id)
			n++
		}
	}
	for id, g := range s.grants {
		if g.Expired(now) {
			n += s.deleteGrant(id)
		}
	}
	for hash, c := range s.codes {
		if expired(now, c.ExpiresAt) {
			delete(s.codes, hash)
			removeChild(s.codesByGrant, c.GrantID, hash)
			n++
		}
	}
	for hash, r := range s.tokens {
		if expired(now, r.ExpiresAt) {
			delete(s.tokens, hash)
			removeChild(s.tokensByGrant, r.GrantID, hash)
			n++
		}
	}
	return n + s.assertions.sweep(now), nil
}

// Ping reports whether the store is usable; an in-memory store always is,
// unless ctx is done.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fail("ping", err)
	}
	return nil
}
