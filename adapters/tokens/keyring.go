package tokens

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oidcproxy/oidcproxy/domain"
)

// ring is an immutable snapshot of the key ring, shared by concurrent
// Issue, Verify and JWKS calls.
type ring struct {
	activeID string
	signer   jose.Signer
	public   map[string]*ecdsa.PublicKey
	jwks     []byte
}

// load reads the store and builds a snapshot, generating a key first when
// no stored key may sign. The caller holds i.mu.
func (i *Issuer) load(ctx context.Context) (*ring, error) {
	keys, err := i.keys.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	now := i.clock.Now()
	if _, ok := activeKey(keys, now); !ok {
		k, err := i.newKey(now)
		if err != nil {
			return nil, err
		}
		if err := i.keys.PutKey(ctx, k); err != nil {
			return nil, fmt.Errorf("store key: %w", err)
		}
		keys = append(keys, k)
	}
	return i.build(keys, now)
}

// activeKey picks the key that signs: the newest one that has not been
// retired. Ties on CreatedAt go to the later entry (the store lists oldest
// first).
func activeKey(keys []domain.SigningKey, now time.Time) (domain.SigningKey, bool) {
	var best domain.SigningKey
	found := false
	for _, k := range keys {
		if retired(k, now) || removed(k, now) {
			continue
		}
		if !found || !k.CreatedAt.Before(best.CreatedAt) {
			best, found = k, true
		}
	}
	return best, found
}

func retired(k domain.SigningKey, now time.Time) bool {
	return !k.NotAfter.IsZero() && !now.Before(k.NotAfter)
}

func removed(k domain.SigningKey, now time.Time) bool {
	return !k.RemoveAfter.IsZero() && !now.Before(k.RemoveAfter)
}

// build parses the stored keys into a snapshot. Only the active key's
// private half is unsealed: the others only verify. A stored key that does
// not parse is an error, not something to skip: a changed encryption key or
// a corrupted store must stop the server loudly instead of making it mint a
// fresh key and silently invalidate everything issued before.
func (i *Issuer) build(keys []domain.SigningKey, now time.Time) (*ring, error) {
	active, ok := activeKey(keys, now)
	if !ok {
		return nil, errors.New("no active signing key")
	}
	r := &ring{activeID: active.ID, public: make(map[string]*ecdsa.PublicKey, len(keys))}
	var set jose.JSONWebKeySet
	for _, k := range keys {
		if removed(k, now) {
			continue
		}
		jwk, pub, err := parsePublic(k)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		r.public[k.ID] = pub
		set.Keys = append(set.Keys, jwk)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	r.jwks = jwks

	priv, err := i.unsealPrivate(active)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", active.ID, err)
	}
	if !priv.PublicKey.Equal(r.public[active.ID]) {
		return nil, fmt.Errorf("key %q: private key does not match its public key", active.ID)
	}
	r.signer, err = jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: active.ID}},
		(&jose.SignerOptions{}).WithType(tokenType),
	)
	if err != nil {
		return nil, fmt.Errorf("key %q: signer: %w", active.ID, err)
	}
	return r, nil
}

// parsePublic checks a stored key's public half: ES256, a P-256 public key,
// and a JWK whose kid matches the record.
func parsePublic(k domain.SigningKey) (jose.JSONWebKey, *ecdsa.PublicKey, error) {
	if k.Algorithm != string(jose.ES256) {
		return jose.JSONWebKey{}, nil, fmt.Errorf("unsupported algorithm %q", k.Algorithm)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(k.PublicJWK); err != nil {
		return jose.JSONWebKey{}, nil, fmt.Errorf("public jwk: %w", err)
	}
	pub, ok := jwk.Key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return jose.JSONWebKey{}, nil, errors.New("public jwk is not a P-256 public key")
	}
	if jwk.KeyID != k.ID {
		return jose.JSONWebKey{}, nil, errors.New("public jwk kid does not match the key id")
	}
	// Publish exactly what verifiers need, whatever else the record held.
	return jose.JSONWebKey{Key: pub, KeyID: k.ID, Algorithm: string(jose.ES256), Use: "sig"}, pub, nil
}

func (i *Issuer) unsealPrivate(k domain.SigningKey) (*ecdsa.PrivateKey, error) {
	der, err := i.sealer.Open(k.SealedPrivate, []byte(k.ID))
	if err != nil {
		return nil, fmt.Errorf("unseal private key (was the encryption key changed?): %w", err)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("private key is not a P-256 key")
	}
	return priv, nil
}

// newKey generates a P-256 key named by its RFC 7638 thumbprint and seals
// the private half with the kid as associated data.
func (i *Issuer) newKey(now time.Time) (domain.SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return domain.SigningKey{}, fmt.Errorf("generate key: %w", err)
	}
	pub := jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return domain.SigningKey{}, fmt.Errorf("key thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	pubJSON, err := pub.MarshalJSON()
	if err != nil {
		return domain.SigningKey{}, fmt.Errorf("encode public key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return domain.SigningKey{}, fmt.Errorf("encode private key: %w", err)
	}
	defer clear(der)
	sealed, err := i.sealer.Seal(der, []byte(pub.KeyID))
	if err != nil {
		return domain.SigningKey{}, fmt.Errorf("seal private key: %w", err)
	}
	return domain.SigningKey{
		ID:            pub.KeyID,
		Algorithm:     string(jose.ES256),
		SealedPrivate: sealed,
		PublicJWK:     pubJSON,
		CreatedAt:     now,
	}, nil
}

// Reload re-reads the key ring from the store, so that a key rotated by
// another process (`oidcproxy keys rotate`) is picked up. Like Open, it
// generates a key if none may sign.
func (i *Issuer) Reload(ctx context.Context) error {
	if err := i.reload(ctx); err != nil {
		return fmt.Errorf("tokens: reload: %w", err)
	}
	return nil
}

func (i *Issuer) reload(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	r, err := i.load(ctx)
	if err != nil {
		return err
	}
	i.ring.Store(r)
	return nil
}

// Rotate creates a new active key and retires the previous one: it stops
// signing now and stays published (and accepted) until now+maxTokenTTL, when
// every token it signed has expired. maxTokenTTL must be at least the
// longest access-token lifetime.
func (i *Issuer) Rotate(ctx context.Context, maxTokenTTL time.Duration) (domain.SigningKey, error) {
	if maxTokenTTL <= 0 {
		return domain.SigningKey{}, errors.New("tokens: rotate: maxTokenTTL must be positive")
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	keys, err := i.keys.ListKeys(ctx)
	if err != nil {
		return domain.SigningKey{}, fmt.Errorf("tokens: rotate: list keys: %w", err)
	}
	now := i.clock.Now()
	next, err := i.newKey(now)
	if err != nil {
		return domain.SigningKey{}, fmt.Errorf("tokens: rotate: %w", err)
	}
	// Store the new key before retiring the old ones: a crash in between
	// leaves two signing candidates (the newest wins), never none.
	if err := i.keys.PutKey(ctx, next); err != nil {
		return domain.SigningKey{}, fmt.Errorf("tokens: rotate: store key: %w", err)
	}
	for _, k := range keys {
		if retired(k, now) || removed(k, now) {
			continue
		}
		k.NotAfter = now
		k.RemoveAfter = now.Add(maxTokenTTL)
		if err := i.keys.PutKey(ctx, k); err != nil {
			return domain.SigningKey{}, fmt.Errorf("tokens: rotate: retire key %q: %w", k.ID, err)
		}
	}
	r, err := i.load(ctx)
	if err != nil {
		return domain.SigningKey{}, fmt.Errorf("tokens: rotate: %w", err)
	}
	i.ring.Store(r)
	return next, nil
}

// Prune deletes the keys whose RemoveAfter has passed and reports how many
// it deleted. Such keys are already left out of JWKS and verification; Prune
// only removes the records.
func (i *Issuer) Prune(ctx context.Context) (int, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	keys, err := i.keys.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("tokens: prune: list keys: %w", err)
	}
	now := i.clock.Now()
	keys = slices.DeleteFunc(keys, func(k domain.SigningKey) bool { return !removed(k, now) })
	for n, k := range keys {
		if err := i.keys.DeleteKey(ctx, k.ID); err != nil {
			return n, fmt.Errorf("tokens: prune: delete key %q: %w", k.ID, err)
		}
	}
	r, err := i.load(ctx)
	if err != nil {
		return len(keys), fmt.Errorf("tokens: prune: %w", err)
	}
	i.ring.Store(r)
	return len(keys), nil
}

// Keys lists the key ring as stored (for `oidcproxy keys list`), oldest
// first. Private keys stay sealed.
func (i *Issuer) Keys(ctx context.Context) ([]domain.SigningKey, error) {
	keys, err := i.keys.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("tokens: keys: %w", err)
	}
	return keys, nil
}
