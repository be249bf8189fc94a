package tokens

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// MaxTokenSize bounds what Verify parses. Our tokens are well under 1 KiB;
// the bound keeps a hostile bearer header from costing more than a glance.
const MaxTokenSize = 8 << 10

// tokenType is the JWT typ of access tokens (RFC 9068 2.1); it keeps an ID
// token or any other JWT signed by the same key from passing as one.
const tokenType = "at+jwt"

// allowedAlgorithms is the only algorithm Verify accepts: the key ring
// holds ES256 keys only, and accepting anything else (none, HS256 with the
// public key as secret, RS256) is how JWT libraries get broken.
var allowedAlgorithms = []jose.SignatureAlgorithm{jose.ES256}

// Issuer signs and verifies oidcproxy's access tokens and publishes the
// public keys. It is safe for concurrent use; Issue, Verify and JWKS read an
// in-memory snapshot and touch the store only when Verify meets an unknown
// key id (see Verify).
type Issuer struct {
	keys   ports.KeyStore
	sealer ports.Sealer
	clock  ports.Clock

	mu       sync.Mutex // serialises Reload, Rotate and Prune
	ring     atomic.Pointer[ring]
	verified *verifiedCache

	// unknownMu serialises the reloads that unknown key ids cause;
	// lastUnknown is when the last one began.
	unknownMu   sync.Mutex
	lastUnknown time.Time
}

// unknownKeyReloadInterval bounds the reloads that tokens with an unknown
// key id cause to one per interval, whatever is presented: a token with a
// made-up kid costs nothing to send.
const unknownKeyReloadInterval = time.Second

var _ ports.TokenIssuer = (*Issuer)(nil)

// ProviderSet builds the Issuer on the key store's ring, as the token
// issuer of the use cases and the key manager of the admin listener and
// the keys command, and the judge of the key sets operators register for
// private_key_jwt clients.
var ProviderSet = wire.NewSet(
	Open,
	wire.Bind(new(ports.TokenIssuer), new(*Issuer)),
	wire.Bind(new(ports.KeyManager), new(*Issuer)),
	wire.Value(KeySets{}),
	wire.Bind(new(ports.KeySetValidator), new(KeySets)),
)

// Open loads the signing key ring from keys, generating and storing a first
// key (private half sealed with sealer) when none may sign.
func Open(ctx context.Context, keys ports.KeyStore, sealer ports.Sealer, clock ports.Clock) (*Issuer, error) {
	if keys == nil || sealer == nil || clock == nil {
		return nil, errors.New("tokens: open: nil key store, sealer or clock")
	}
	i := &Issuer{keys: keys, sealer: sealer, clock: clock, verified: newVerifiedCache(verifiedCacheSize)}
	if err := i.reload(ctx); err != nil {
		return nil, fmt.Errorf("tokens: open: %w", err)
	}
	return i, nil
}

// Issue signs t with the active key and returns the compact JWT. It refuses
// a token missing a claim Verify requires.
func (i *Issuer) Issue(_ context.Context, t domain.AccessToken) (string, error) {
	payload, err := encodeClaims(t)
	if err != nil {
		return "", fmt.Errorf("tokens: issue: %w", err)
	}
	jws, err := i.ring.Load().signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("tokens: issue: sign: %w", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("tokens: issue: serialize: %w", err)
	}
	return token, nil
}

// Verify checks that token is an access token signed by a key of the ring
// and returns its claims with KeyID set. It judges neither issuer, audience,
// time nor scopes (the use case does), but refuses tokens whose claims are
// malformed. Errors never contain the token. Successful verifications are
// cached until the token expires (see verifiedCache).
//
// A token whose key id the ring does not hold may have been signed by a
// key that another instance sharing the store has just made active, before
// this one heard of the rotation: Verify then reloads the ring once (at
// most once per unknownKeyReloadInterval, see reloadFor) and tries again.
func (i *Issuer) Verify(ctx context.Context, token string) (domain.AccessToken, error) {
	if len(token) > MaxTokenSize {
		return domain.AccessToken{}, fmt.Errorf("tokens: verify: token is larger than %d bytes", MaxTokenSize)
	}
	key := cacheKey(token)
	now := i.clock.Now()
	if t, ok := i.verified.get(key, now, i.ring.Load()); ok {
		return t, nil
	}
	t, err := i.verify(token)
	var unknown unknownKeyError
	if errors.As(err, &unknown) && i.reloadFor(ctx, unknown.kid) {
		t, err = i.verify(token)
	}
	if err != nil {
		return domain.AccessToken{}, fmt.Errorf("tokens: verify: %w", err)
	}
	if now.Before(t.ExpiresAt) {
		i.verified.put(key, t)
	}
	return t, nil
}

func (i *Issuer) verify(token string) (domain.AccessToken, error) {
	if len(token) > MaxTokenSize {
		return domain.AccessToken{}, fmt.Errorf("token is larger than %d bytes", MaxTokenSize)
	}
	if err := checkCanonical(token); err != nil {
		return domain.AccessToken{}, err
	}
	jws, err := jose.ParseSignedCompact(token, allowedAlgorithms)
	if err != nil {
		return domain.AccessToken{}, fmt.Errorf("parse: %w", err)
	}
	header := jws.Signatures[0].Protected
	typ, _ := header.ExtraHeaders[jose.HeaderType].(string)
	if !isAccessTokenType(typ) {
		return domain.AccessToken{}, errors.New("token type is not at+jwt")
	}
	pub, ok := i.ring.Load().public[header.KeyID]
	if !ok {
		return domain.AccessToken{}, unknownKeyError{kid: header.KeyID}
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return domain.AccessToken{}, fmt.Errorf("signature: %w", err)
	}
	t, err := decodeClaims(payload)
	if err != nil {
		return domain.AccessToken{}, err
	}
	t.KeyID = header.KeyID
	return t, nil
}

// unknownKeyError refuses a token whose key id is not in the ring.
type unknownKeyError struct{ kid string }

func (unknownKeyError) Error() string { return "unknown key id" }

// reloadFor reloads the ring for a token signed with key kid, which it
// does not hold, and reports whether the ring holds kid now. Concurrent
// callers wait for one reload; a reload begun less than
// unknownKeyReloadInterval ago is not repeated (a clock set back counts as
// the interval passed). A failed reload only means the token is refused.
func (i *Issuer) reloadFor(ctx context.Context, kid string) bool {
	i.unknownMu.Lock()
	defer i.unknownMu.Unlock()
	if _, ok := i.ring.Load().public[kid]; ok {
		return true // another caller's reload brought it
	}
	now := i.clock.Now()
	if !i.lastUnknown.IsZero() && !now.Before(i.lastUnknown) && now.Sub(i.lastUnknown) < unknownKeyReloadInterval {
		return false
	}
	i.lastUnknown = now
	if err := i.reload(ctx); err != nil {
		return false
	}
	_, ok := i.ring.Load().public[kid]
	return ok
}

// isAccessTokenType accepts "at+jwt" and its full media type, in any case
// (RFC 9068 2.1, RFC 7515 4.1.9).
func isAccessTokenType(typ string) bool {
	return strings.EqualFold(typ, tokenType) || strings.EqualFold(typ, "application/"+tokenType)
}

// checkCanonical requires three segments, each the canonical unpadded
// base64url spelling of its bytes. go-jose decodes leniently (it ignores
// non-zero trailing bits, and encoding/base64 skips CR and LF even in strict
// mode), so without this one signed token would have many spellings, and an
// accepted token would not be byte for byte what we signed.
func checkCanonical(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("token is not a compact JWS")
	}
	for _, p := range parts {
		raw, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil || base64.RawURLEncoding.EncodeToString(raw) != p {
			return errors.New("token is not canonical base64url")
		}
	}
	return nil
}

// JWKS returns the public key set ({"keys":[...]}) of every key that has not
// reached its RemoveAfter, the active one included.
func (i *Issuer) JWKS(context.Context) ([]byte, error) {
	// A copy, so a caller that edits the document cannot change what the
	// next caller is served.
	return bytes.Clone(i.ring.Load().jwks), nil
}

// ActiveKeyID returns the kid new tokens are signed with.
func (i *Issuer) ActiveKeyID() string {
	return i.ring.Load().activeID
}
