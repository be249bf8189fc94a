package bench_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// machineClient is one of the concurrentClients machine clients an
// operator created: its secret, or its private key.
type machineClient struct {
	id, secret string
	key        *ecdsa.PrivateKey
}

// seedMachines stores concurrentClients operator clients for
// client_credentials: with keys, each with its own ES256 key registered
// inline (private_key_jwt), otherwise each with a secret.
func (p *proxy) seedMachines(keys bool) []machineClient {
	p.tb.Helper()
	ms := make([]machineClient, concurrentClients)
	p.seed(func(ctx context.Context, s ports.Store) error {
		for i := range ms {
			m := machineClient{id: fmt.Sprintf("machine-%02d", i)}
			c := domain.Client{
				ID: m.id, ApplicationType: domain.ApplicationWeb, GrantTypes: []string{domain.GrantClientCredentials},
				Scope: "openid", Operator: true, CreatedAt: time.Now().UTC(),
			}
			if keys {
				var err error
				if m.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
					return err
				}
				set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: m.key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
				if err != nil {
					return err
				}
				c.TokenEndpointAuthMethod, c.JWKS = domain.AuthPrivateKeyJWT, set
			} else {
				m.secret = randomToken()
				c.TokenEndpointAuthMethod, c.SecretHash = domain.AuthClientSecretBasic, []byte(domain.HashToken(m.secret))
			}
			if err := s.CreateClient(ctx, c); err != nil {
				return fmt.Errorf("create client: %w", err)
			}
			ms[i] = m
		}
		return nil
	})
	return ms
}

// clientCredentialsBodies are n client_credentials requests, spread over
// the clients in turn. A key client's request carries an assertion signed
// now, before the timer, with a jti of its own and an exp five minutes
// ahead, so that the load measures the server's verification and not the
// client's signing.
func (p *proxy) clientCredentialsBodies(ms []machineClient, n int) []string {
	p.tb.Helper()
	bodies := make([]string, n)
	now := time.Now()
	signers := make([]jose.Signer, len(ms))
	for i, m := range ms {
		if m.key == nil {
			continue
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: m.key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			p.tb.Fatalf("signer: %v", err)
		}
		signers[i] = s
	}
	err := forEachParallel(n, seedWorkers, func(i int) error {
		m := ms[i%len(ms)]
		form := url.Values{"grant_type": {domain.GrantClientCredentials}, "resource": {p.Resource}}
		if m.key == nil {
			form.Set("client_id", m.id)
			form.Set("client_secret", m.secret)
		} else {
			assertion, err := jwt.Signed(signers[i%len(ms)]).Claims(map[string]any{
				"iss": m.id, "sub": m.id, "aud": p.BaseURL, "jti": randomToken(),
				"iat": now.Unix(), "exp": now.Add(domain.MaxClientAssertionLifetime).Unix(),
			}).Serialize()
			if err != nil {
				return err
			}
			form.Set("client_assertion_type", domain.ClientAssertionType)
			form.Set("client_assertion", assertion)
		}
		bodies[i] = form.Encode()
		return nil
	})
	if err != nil {
		p.tb.Fatalf("sign assertions: %v", err)
	}
	return bodies
}

// newMachineSide starts an App with concurrentClients machine clients and
// n prepared client_credentials requests.
func newMachineSide(tb testing.TB, n int, client *http.Client, keys bool, store boltstore.Options) *tokenSide {
	tb.Helper()
	p := newProxy(tb)
	ms := p.seedMachines(keys)
	p.start(store)
	return &tokenSide{p: p, client: client, good: p.clientCredentialsBodies(ms, n)}
}

// BenchmarkClientCredentials measures grant_type=client_credentials at
// /token: 50 machine clients an operator created, each its own goroutine
// and keep-alive connection, on three Apps in interleaved slices:
//
//   - secret: client_secret_post, production store (fsync). A token costs
//     the client lookup, a read of the client's live machine grant (both
//     cached by the store) and the signature of the access token: no
//     write.
//   - key: private_key_jwt with ES256, production store. On top: parsing
//     and verifying the client's assertion, and consuming its jti, a
//     store write in the group commit.
//   - key-nosync: the same without fsync, to tell the write's durability
//     from the rest.
//
// key ÷ secret is what private_key_jwt costs; key ÷ key-nosync what the
// jti's durable write costs. With OIDCPROXY_BENCH_CPUPROFILE=dir, the
// per-slice profiles show the share of verification against issuance:
//
//	go tool pprof -top -cum dir/BenchmarkClientCredentials_key_*.cpu | grep -E 'authenticateAssertion|VerifyAssertion|accessTokens..issue|ConsumeAssertionID'
//
// Run it with -benchtime 1x (8,000 tokens per side).
func BenchmarkClientCredentials(b *testing.B) {
	client := tokenClient(b)
	names := []string{"secret", "key", "key-nosync"}
	sides := []*tokenSide{
		newMachineSide(b, sideCredentials(b), client, false, boltstore.Options{}),
		newMachineSide(b, sideCredentials(b), client, true, boltstore.Options{}),
		newMachineSide(b, sideCredentials(b), client, true, boltstore.Options{NoSync: true}),
	}
	in := make([]side, len(sides))
	for i, s := range sides {
		in[i] = s.side(b, names[i])
	}
	st := runSides(b, tokenSlices, in, nil)
	reportSides(b, names, st)
	for i, name := range names {
		b.ReportMetric(st[i].CPUPerRequest, name+"-cpu-µs/token")
	}
	// No targets are set yet: the ratios are reported, not judged.
	for _, r := range []struct {
		what     string
		num, den int
	}{{"private_key_jwt against a secret", 1, 0}, {"durability of the jti", 1, 2}} {
		if st[r.den].PerSec == 0 {
			continue
		}
		ratio := st[r.num].PerSec / st[r.den].PerSec
		b.ReportMetric(ratio, names[r.num]+"/"+names[r.den])
		b.Logf("%s: %s ÷ %s = %.0f ÷ %.0f tokens/s = %.2f", r.what, names[r.num], names[r.den], st[r.num].PerSec, st[r.den].PerSec, ratio)
	}
}

// TestClientCredentialsBenchHarnessWorks runs the client_credentials load
// once, small: every prepared request yields a token, and a replayed
// assertion is refused.
func TestClientCredentialsBenchHarnessWorks(t *testing.T) {
	transport := newTransport()
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	for _, keys := range []bool{false, true} {
		s := newMachineSide(t, 2*concurrentClients, client, keys, boltstore.Options{NoSync: true})
		if _, err := s.run(t.Context(), 2*concurrentClients); err != nil {
			t.Fatalf("keys=%v: %v", keys, err)
		}
		res, err := postToken(t.Context(), client, s.p.TokenURL, s.good[0])
		want := http.StatusOK
		if keys {
			want = http.StatusUnauthorized
		}
		if err != nil || res.Status != want {
			t.Fatalf("keys=%v: sending the first request again answered %+v, %v; want %d", keys, res, err, want)
		}
	}
}
