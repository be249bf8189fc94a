package ports

import (
	"context"
	"io"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Every store method follows the same rules, checked by test/storetest:
//   - absent or expired records read as domain.ErrNotFound, even before a
//     sweep removes them;
//   - each method is one atomic unit: it fully happens or not at all;
//   - closures passed in run inside the store's transaction and must not do
//     I/O; they may run more than once (group commit), so they must not
//     have side effects outside the record they are given;
//   - errors returned by a closure come back unwrapped; the store's own
//     errors are wrapped with the store's name;
//   - empty ids and keys are refused; a zero ExpiresAt counts as expired;
//   - reads never delete; Sweep counts every record it removes, including
//     codes and tokens removed together with an expired grant.

// ClientStore keeps registered clients.
type ClientStore interface {
	// CreateClient stores a new client; domain.ErrAlreadyExists if the id is taken.
	CreateClient(ctx context.Context, c domain.Client) error
	// GetClient returns a client by id.
	GetClient(ctx context.Context, id string) (domain.Client, error)
}

// RegistrationStore keeps the clients that registered themselves
// (Operator false) bounded: how many may exist, and how long one that never
// completed a grant is kept. The store keeps the number of such clients up
// to date in the same atomic unit as every create and delete of one, so
// that checking the bound costs no scan.
type RegistrationStore interface {
	// RegisterClient stores c like CreateClient, unless max is positive
	// and max self-registered clients are stored already: then
	// domain.ErrLimitReached and nothing changes. An operator's client is
	// never refused for the bound, and never counted.
	RegisterClient(ctx context.Context, c domain.Client, max int) error
	// SweepUnusedClients deletes the self-registered clients that never
	// completed a grant (FirstGrantAt zero) and were created before
	// createdBefore, and reports how many, also when it stops on an error.
	// Operator clients are never deleted.
	SweepUnusedClients(ctx context.Context, createdBefore time.Time) (int, error)
}

// TransactionStore keeps authorizations in progress, keyed by the hash of
// their id.
type TransactionStore interface {
	// CreateTransaction stores a new transaction; domain.ErrAlreadyExists on a duplicate id.
	CreateTransaction(ctx context.Context, t domain.Transaction) error
	// UpdateTransaction applies fn to the stored transaction and saves the
	// result in the same atomic unit. If fn returns an error nothing changes
	// and the error is returned.
	UpdateTransaction(ctx context.Context, id string, now time.Time, fn func(*domain.Transaction) error) error
	// ConsumeTransaction deletes the transaction and returns it: of many
	// concurrent calls exactly one succeeds; the rest get domain.ErrNotFound.
	// If check returns an error the transaction is deleted anyway (it is
	// single use: a wrong CSRF token or a tampered callback burns it) and
	// the error is returned; check may be nil.
	ConsumeTransaction(ctx context.Context, id string, now time.Time, check func(domain.Transaction) error) (domain.Transaction, error)
	// ReplaceTransaction atomically consumes the transaction oldID and, if
	// check accepts it, stores the transaction check returns in its place
	// and returns it. Of many concurrent calls exactly one succeeds. A
	// rejected check burns oldID and stores nothing; a replacement with an
	// empty or taken id changes nothing (domain.ErrAlreadyExists when taken).
	ReplaceTransaction(ctx context.Context, oldID string, now time.Time, check func(domain.Transaction) (domain.Transaction, error)) (domain.Transaction, error)
}

// GrantStore keeps grants, their authorization codes and refresh tokens.
// Deleting a grant revokes everything issued from it: codes and refresh
// tokens whose grant is gone read as domain.ErrNotFound.
type GrantStore interface {
	// CreateGrant stores a new grant and its first authorization code in one
	// atomic unit. In the same unit, when the grant's client is a stored
	// client whose FirstGrantAt is zero, it sets FirstGrantAt to the
	// grant's CreatedAt (a client ID metadata document client is not
	// stored, and nothing else changes).
	CreateGrant(ctx context.Context, g domain.Grant, code domain.AuthorizationCode) error
	// CreateDirectGrant stores a new grant that no code leads to: the
	// grants of the token endpoint's direct grants (client_credentials,
	// jwt-bearer), whose access tokens are issued at once.
	// domain.ErrAlreadyExists if the id is taken.
	CreateDirectGrant(ctx context.Context, g domain.Grant) error
	// GetGrant returns a live grant.
	GetGrant(ctx context.Context, id string, now time.Time) (domain.Grant, error)
	// RevokeGrant deletes a grant (and with it every code and refresh token
	// that hangs on it). Revoking an absent grant is not an error.
	RevokeGrant(ctx context.Context, id string) error

	// RedeemCode is the single-use step of the authorization_code grant,
	// with replay detection. use.Check says whether the request presenting
	// the code holds what the code was issued for (its client, redirect
	// URI, PKCE verifier, resource); use.Issue builds the refresh token to
	// store. Below, check and issue are those two.
	// In one atomic unit, on the live code and its grant:
	//   - absent, expired, or grant gone: domain.ErrNotFound; nothing
	//     changes, and neither check nor issue is called;
	//   - not redeemed yet, check and issue accept it: the code is marked
	//     redeemed and the refresh token issue returns (nil: none) is
	//     stored; the code and its grant are returned;
	//   - not redeemed yet, check or issue returns an error: the code is
	//     burned with its grant, which is revoked (as RevokeGrant: nothing
	//     can reach it any more), and that error is returned;
	//   - already redeemed (a replay): issue is not called; if check
	//     accepts the stored code, its presenter holds everything the
	//     legitimate client holds, so the code leaked and the first
	//     redemption may not have been the client's: the grant is revoked.
	//     Either way the stored code and its grant (as they were) are
	//     returned with domain.ErrAlreadyConsumed.
	// The revocation is part of the unit that detects the replay or the
	// burn: no failure can leave a grant alive that a replayed or burned
	// code was issued for. issue sees the code with RedeemedAt = now. A
	// refresh token naming another grant is refused and nothing changes.
	// Of many concurrent calls for one code exactly one reaches issue; the
	// others find it redeemed, or its grant revoked by one of them
	// (ErrNotFound).
	//
	// A store may decide a domain.CodeRedemption from its CodeClaim in the
	// statement that claims the code, with the same outcome.
	RedeemCode(ctx context.Context, hash string, now time.Time, use domain.CodeUse) (domain.AuthorizationCode, domain.Grant, error)

	// RotateRefreshToken is the single-use step of the refresh_token grant,
	// with reuse detection and a retry window. In one atomic unit it reads
	// the presented token and, when that was rotated, the successor its
	// SuccessorHash names, and applies
	// domain.DecideRefresh(presented, successor, use, now):
	//   - absent, expired, or grant gone: domain.ErrNotFound, nothing
	//     changes;
	//   - RefreshRotate: the presented token gets RotatedAt = now and
	//     SuccessorHash = the hash of the token rotate returns, which is
	//     stored; the grant is saved as rotate left it;
	//   - RefreshRetry: the presented token's SuccessorHash names the token
	//     rotate returns, which is stored (its RotatedAt stays: the window
	//     counts from the first rotation); the previous, unused successor is
	//     withdrawn (RotatedAt = now, SuccessorHash = ""); the grant is saved
	//     as rotate left it;
	//   - RefreshRevoke: the grant is revoked (deleted with every code and
	//     token, as RevokeGrant) and the presented token is returned with
	//     domain.ErrAlreadyConsumed;
	//   - RefreshRefuse: nothing changes; the presented token is returned
	//     with domain.ErrWrongClient;
	//   - rotate returns an error: nothing changes and the error is
	//     returned.
	// The decision is returned in every case but ErrNotFound; on success
	// with the new token. rotate (rotate.Rotate below) builds the new token
	// and the grant's new state the same way for a rotation and a retry, so
	// a store may call it
	// before deciding (and discard its result on RefreshRevoke or
	// RefreshRefuse): a SQL store can then apply the whole rule in one
	// conditional statement (a domain.Rotation that is Plain states its
	// whole effect as values for one). A new token with an empty or taken hash, or a
	// rotate that changes the grant's id, is refused and nothing changes.
	// Of many concurrent calls for one token, each sees the state the
	// previous one committed: with a retry window they may all succeed,
	// but every successor but the last ends withdrawn.
	RotateRefreshToken(ctx context.Context, hash string, now time.Time, use domain.RefreshUse, rotate domain.Rotator) (domain.RefreshToken, domain.RefreshDecision, error)
	// GetRefreshToken returns a refresh token record (live or rotated) whose
	// grant still exists.
	GetRefreshToken(ctx context.Context, hash string, now time.Time) (domain.RefreshToken, error)
}

// AssertionStore remembers the JWT assertions already used (client
// assertions, ID-JAGs), so that each is accepted once however many
// instances share the store.
type AssertionStore interface {
	// ConsumeAssertionID records that the assertion with jti, vouched for
	// by issuer (the client of a client assertion, the IdP of an ID-JAG),
	// was used, and remembers it until expiresAt. Of many concurrent calls
	// for one (issuer, jti), in one process or several sharing the store,
	// exactly one succeeds; the others, and every later call before
	// expiresAt, get domain.ErrAlreadyConsumed. A record past its
	// expiresAt counts as absent; an expiresAt not after now is refused
	// with an error (it could guard nothing). Calls for different keys
	// never wait for each other beyond the store's own commit.
	ConsumeAssertionID(ctx context.Context, issuer, jti string, now, expiresAt time.Time) error
}

// KeyStore keeps the signing key ring.
type KeyStore interface {
	// ListKeys returns every stored signing key, oldest first.
	ListKeys(ctx context.Context) ([]domain.SigningKey, error)
	// PutKey creates or replaces a key.
	PutKey(ctx context.Context, k domain.SigningKey) error
	// DeleteKey removes a key; absent is not an error.
	DeleteKey(ctx context.Context, id string) error
}

// Sweeper removes records that expired before now and reports how many.
type Sweeper interface {
	Sweep(ctx context.Context, now time.Time) (int, error)
}

// Pinger checks that the store is usable (for readiness).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Store is everything oidcproxy keeps. Every backend implements all of it
// and passes test/storetest.
type Store interface {
	ClientStore
	ClientAdmin
	RegistrationStore
	TransactionStore
	GrantStore
	GrantAdmin
	AssertionStore
	KeyStore
	Sweeper
	Pinger
}

// Backuper is a store that can write a consistent copy of itself (for
// `oidcproxy backup`).
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}
