package ports

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Exporter and Importer move a whole store from one backend to another
// (`oidcproxy store copy`: a single instance on its bbolt file grows into
// several instances on PostgreSQL, or back) without asking anyone to sign
// in again. They are capabilities of their own, beside Store: serving
// never enumerates a store, and a store that cannot be copied is still a
// store.
//
// Records travel as they are stored: hashes stay hashes and sealed values
// stay sealed, so the destination needs the source's ENCRYPTION_KEY, and
// nothing secret is ever opened on the way.

// Record is one stored record on its way from one store to another.
// Exactly one field is set.
type Record struct {
	Client       *domain.Client
	SigningKey   *domain.SigningKey
	Transaction  *domain.Transaction
	Grant        *domain.Grant
	Code         *domain.AuthorizationCode
	RefreshToken *domain.RefreshToken
	// UsedAssertion is a remembered assertion id (ConsumeAssertionID),
	// copied so that an assertion used on the source just before the copy
	// is still refused as a replay on the destination.
	UsedAssertion *UsedAssertion
}

// UsedAssertion is what a store keeps of a used JWT assertion (a client
// assertion or an ID-JAG): its key, domain.AssertionReplayKey of its
// issuer and jti (which a store cannot recover from the key, nor needs
// to), and when it may be forgotten (domain.Assertion.ReplayExpiry: from
// then on the assertion itself is refused).
type UsedAssertion struct {
	Key       string
	ExpiresAt time.Time
}

// RecordKind names what a Record holds.
type RecordKind int

// The kinds of record, in the order Export yields them: a code or refresh
// token always comes after the grant it hangs on.
const (
	KindClient RecordKind = iota + 1
	KindSigningKey
	KindTransaction
	KindGrant
	KindCode
	KindRefreshToken
	KindUsedAssertion
)

// recordKinds are the kinds in export order, for iterating over them.
var recordKinds = []RecordKind{KindClient, KindSigningKey, KindTransaction, KindGrant, KindCode, KindRefreshToken, KindUsedAssertion}

// String names the kind in the singular, for messages.
func (k RecordKind) String() string {
	switch k {
	case KindClient:
		return "client"
	case KindSigningKey:
		return "signing key"
	case KindTransaction:
		return "authorization in progress"
	case KindGrant:
		return "grant"
	case KindCode:
		return "authorization code"
	case KindRefreshToken:
		return "refresh token"
	case KindUsedAssertion:
		return "used assertion id"
	}
	return "unknown record"
}

// plural names n records of the kind.
func (k RecordKind) plural(n int) string {
	if n == 1 {
		return "1 " + k.String()
	}
	if k == KindTransaction {
		return fmt.Sprintf("%d authorizations in progress", n)
	}
	return fmt.Sprintf("%d %ss", n, k)
}

// Kind reports what r holds: the kind of its one set field, or 0 when
// none or more than one is set (a malformed record, which importers
// refuse).
func (r Record) Kind() RecordKind {
	kind, set := RecordKind(0), 0
	for _, f := range []struct {
		ok   bool
		kind RecordKind
	}{
		{r.Client != nil, KindClient},
		{r.SigningKey != nil, KindSigningKey},
		{r.Transaction != nil, KindTransaction},
		{r.Grant != nil, KindGrant},
		{r.Code != nil, KindCode},
		{r.RefreshToken != nil, KindRefreshToken},
		{r.UsedAssertion != nil, KindUsedAssertion},
	} {
		if f.ok {
			kind, set = f.kind, set+1
		}
	}
	if set != 1 {
		return 0
	}
	return kind
}

// Key is the record's key in its kind: the id of a client, signing key,
// grant or transaction (the hash of its raw id), the hash of a code or
// refresh token, the replay key of a used assertion; "" for a malformed
// record.
func (r Record) Key() string {
	switch r.Kind() {
	case KindClient:
		return r.Client.ID
	case KindSigningKey:
		return r.SigningKey.ID
	case KindTransaction:
		return r.Transaction.ID
	case KindGrant:
		return r.Grant.ID
	case KindCode:
		return r.Code.Hash
	case KindRefreshToken:
		return r.RefreshToken.Hash
	case KindUsedAssertion:
		return r.UsedAssertion.Key
	}
	return ""
}

// GrantID is the grant a code or refresh token hangs on, "" for the other
// kinds.
func (r Record) GrantID() string {
	switch r.Kind() {
	case KindCode:
		return r.Code.GrantID
	case KindRefreshToken:
		return r.RefreshToken.GrantID
	}
	return ""
}

// RecordCounts counts records by kind.
type RecordCounts map[RecordKind]int

// Total is the number of records of every kind.
func (c RecordCounts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// String lists the counts in export order, leaving out kinds with none:
// "2 clients, 1 signing key, 5 grants".
func (c RecordCounts) String() string {
	var parts []string
	for _, k := range recordKinds {
		if n := c[k]; n > 0 {
			parts = append(parts, k.plural(n))
		}
	}
	if len(parts) == 0 {
		return "no records"
	}
	return strings.Join(parts, ", ")
}

// Exporter is a store that can enumerate its records.
type Exporter interface {
	// Export yields every record that is live at now, from one consistent
	// snapshot of the store: clients, signing keys, transactions, grants,
	// codes, refresh tokens and used assertion ids, in that order, each
	// kind ordered by its key's bytes (so two stores holding the same
	// records export the same sequence). Expired records are left out, as
	// are codes and refresh tokens whose grant is gone or expired: they
	// read as not found, and the sweeper would remove them. Redeemed codes,
	// rotated refresh tokens and used assertion ids are included until
	// they expire, so that a replay or a reuse is still recognised after a
	// copy; an expired assertion id guards nothing, since the assertion
	// itself is refused from then on. Every field is as stored; sealed
	// values stay sealed.
	//
	// The first error ends the sequence: it is yielded with a zero Record.
	// Stopping early releases the snapshot.
	Export(ctx context.Context, now time.Time) iter.Seq2[Record, error]
}

// Importer is a store that can be filled with another store's records.
type Importer interface {
	// Import stores every record of records in one atomic unit and
	// reports how many of each kind it stored: either the whole sequence
	// is stored, or nothing is. It refuses a store that already holds any
	// record (a *NotEmptyError, before reading records): a copy into a
	// store in use would mix two populations of clients, grants and keys.
	// It also refuses, storing nothing, a malformed record, a record with
	// an empty key, a key that came before in the sequence
	// (domain.ErrAlreadyExists), a code or refresh token whose grant did
	// not come before it, and an error yielded by records, which it
	// returns as it is. Records are stored as given, expiry included.
	Import(ctx context.Context, records iter.Seq2[Record, error]) (RecordCounts, error)
}

// ErrStoreNotEmpty is what NotEmptyError matches with errors.Is.
var ErrStoreNotEmpty = errors.New("the store is not empty")

// NotEmptyError is an Importer's refusal of a store that holds records.
type NotEmptyError struct {
	// Holds counts what the store holds, live or not.
	Holds RecordCounts
}

func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("%v: it holds %s", ErrStoreNotEmpty, e.Holds)
}

// Is makes errors.Is(err, ErrStoreNotEmpty) true.
func (e *NotEmptyError) Is(target error) bool { return target == ErrStoreNotEmpty }

// ImportCheck applies the rules every Importer enforces on the sequence
// itself, so that all stores refuse the same sequences: feed it each
// record in turn. The zero value is ready to use.
type ImportCheck struct {
	seen   map[RecordKind]map[string]struct{}
	counts RecordCounts
}

// Next checks r against the records before it and returns its kind. It
// refuses a malformed record, an empty key, a key seen before in its kind
// (domain.ErrAlreadyExists) and a code or refresh token whose grant was
// not seen before it.
func (c *ImportCheck) Next(r Record) (RecordKind, error) {
	kind := r.Kind()
	if kind == 0 {
		return 0, errors.New("a record must hold exactly one value")
	}
	key := r.Key()
	if key == "" {
		return 0, fmt.Errorf("a %s with an empty key", kind)
	}
	if c.seen == nil {
		c.seen = map[RecordKind]map[string]struct{}{}
		c.counts = RecordCounts{}
	}
	if g := r.GrantID(); kind == KindCode || kind == KindRefreshToken {
		if _, ok := c.seen[KindGrant][g]; !ok {
			return 0, fmt.Errorf("a %s whose grant does not come before it", kind)
		}
	}
	keys := c.seen[kind]
	if keys == nil {
		keys = map[string]struct{}{}
		c.seen[kind] = keys
	}
	if _, dup := keys[key]; dup {
		return 0, fmt.Errorf("a second %s with the same key: %w", kind, domain.ErrAlreadyExists)
	}
	keys[key] = struct{}{}
	c.counts[kind]++
	return kind, nil
}

// Counts are the records checked so far, by kind.
func (c *ImportCheck) Counts() RecordCounts {
	out := RecordCounts{}
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}
