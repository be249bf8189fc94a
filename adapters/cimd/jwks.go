package cimd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oidcproxy/oidcproxy/domain"
)

// ErrNotJWKS: the body at a jwks_uri is not a JSON object with a keys
// array.
var ErrNotJWKS = errors.New("document is not a JWK Set")

// FetchJWKS returns the JWK Set a private_key_jwt client publishes at uri
// (its registered jwks_uri, or the one of its client ID metadata
// document). The fetch has the guards of FetchClientMetadata: https, no
// private addresses (unless AllowPrivateNetwork), no redirects, the
// per-host limits, a size cap (MaxJWKSBytes), and the cache, by the
// answer's max-age clamped to [MinTTL, MaxTTL], failures for NegativeTTL.
// fresh asks for a copy fetched at least MinTTL after the cached one (the
// client may have rotated its keys), so unknown key ids cannot make every
// request a fetch. The set is checked to be a JSON object with a keys
// array; judging the keys is the verifier's job.
func (f *Fetcher) FetchJWKS(ctx context.Context, uri string, fresh bool) ([]byte, error) {
	u, err := domain.ValidateClientIDURL(uri, f.opts.AllowPrivateNetwork)
	if err != nil {
		// The URL rules of client_ids (https, a host, a path, no
		// fragment, no dot-segments) fit a jwks_uri as well.
		return nil, fmt.Errorf("cimd: jwks_uri: %w: %s", ErrURL, strings.Replace(err.Error(), "client_id URL", "URL", 1))
	}
	host := strings.ToLower(u.Hostname())
	var refetchAfter time.Duration
	if fresh {
		refetchAfter = f.opts.MinTTL
	}
	set, err := f.keys.get(ctx, uri, refetchAfter, nil, func(ctx context.Context) ([]byte, int64, time.Duration, error) {
		release, err := f.limits.acquire(host)
		if err != nil {
			if errors.Is(err, ErrBusy) {
				return nil, 0, 0, err
			}
			return nil, 0, 0, fmt.Errorf("cimd: fetch key set from %s: %w", u.Host, err)
		}
		set, ttl, err := f.fetchJWKS(ctx, uri)
		release(err)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("cimd: fetch key set from %s: %w", u.Host, err)
		}
		return set, int64(len(set)), ttl, nil
	})
	if err != nil {
		return nil, err
	}
	// The cached bytes are shared by every caller.
	return bytes.Clone(set), nil
}

func (f *Fetcher) fetchJWKS(ctx context.Context, uri string) ([]byte, time.Duration, error) {
	body, header, err := f.download(ctx, uri, "application/jwk-set+json, application/json", f.opts.MaxJWKSBytes)
	if err != nil {
		return nil, 0, err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' || json.Unmarshal(body, &set) != nil || set.Keys == nil {
		return nil, 0, ErrNotJWKS
	}
	return body, f.ttl(header), nil
}
