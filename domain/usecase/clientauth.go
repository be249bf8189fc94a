package usecase

import (
	"context"
	"errors"
	"fmt"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// clientAssertions authenticates clients with private_key_jwt (RFC 7523
// 2.2): the client signs a short-lived JWT with a key it registered (or
// published in its client ID metadata document), and each JWT is accepted
// once.
type clientAssertions struct {
	verifier ports.AssertionVerifier
	// jwks fetches the key sets of clients that registered a jwks_uri;
	// nil: only inline key sets can be used.
	jwks     ports.JWKSFetcher
	replay   ports.AssertionStore
	clock    ports.Clock
	audience domain.ClientAssertionAudience
}

// acceptAssertions turns private_key_jwt on for every use case that
// authenticates clients through c.
func (c *Clients) acceptAssertions(a *clientAssertions) { c.assertions = a }

// keyChecker is how registrations and documents judge inline key sets:
// nil while private_key_jwt is off.
func (c *Clients) keyChecker() keyChecker {
	if c.assertions == nil {
		return nil
	}
	return c.assertions.checkKeySet
}

func (a *clientAssertions) checkKeySet(jwks []byte) error {
	return a.verifier.CheckKeySet(jwks, domain.AssertionAlgorithms)
}

// authenticateAssertion authenticates the client whose assertion a
// carries. The assertion's sub names the client (client_id, when sent,
// must agree); its keys verify the signature; domain.CheckClientAssertion
// judges the claims; and its jti is consumed in the store, so that a
// captured assertion cannot be replayed, here or at another instance.
// Every failure is invalid_client, its reason in the cause only.
func (c *Clients) authenticateAssertion(ctx context.Context, auth ports.ClientAuth) (domain.Client, error) {
	a := c.assertions
	if a == nil {
		return domain.Client{}, authFailed(errors.New("private_key_jwt is not enabled"))
	}
	if auth.Assertion == "" {
		return domain.Client{}, authFailed(errors.New("client_assertion is missing"))
	}
	unverified, err := a.verifier.ParseAssertion(auth.Assertion)
	if err != nil {
		return domain.Client{}, authFailed(fmt.Errorf("client assertion: %w", err))
	}
	clientID := unverified.Subject
	switch {
	case clientID == "":
		return domain.Client{}, authFailed(errors.New("client assertion has no sub"))
	case auth.ClientID != "" && auth.ClientID != clientID:
		return domain.Client{}, authFailed(errors.New("client_id is not the client assertion's sub"))
	}
	client, err := c.find(ctx, clientID)
	if err != nil {
		return domain.Client{}, err
	}
	if !client.UsesKeys() {
		return domain.Client{}, authFailed(errors.New("the client is not registered for private_key_jwt"))
	}
	verified, err := a.verify(ctx, client, auth.Assertion)
	if err != nil {
		return domain.Client{}, err
	}
	now := a.clock.Now().UTC()
	if err := domain.CheckClientAssertion(verified, client.ID, a.audience, now); err != nil {
		return domain.Client{}, authFailed(err)
	}
	err = a.replay.ConsumeAssertionID(ctx, verified.Issuer, verified.JTI, now, verified.ReplayExpiry())
	switch {
	case errors.Is(err, domain.ErrAlreadyConsumed):
		return domain.Client{}, authFailed(errors.New("client assertion replayed (its jti was used before)"))
	case errors.Is(err, ports.ErrUnavailable):
		return domain.Client{}, domain.ErrTemporarilyUnavailable("the server cannot check the client assertion right now", err)
	case err != nil:
		return domain.Client{}, serverError(fmt.Errorf("authenticate client: consume assertion: %w", err))
	}
	return client, nil
}

// verify checks the assertion's signature with the client's keys: its
// inline set, or the set at its jwks_uri, fetched again (once, rate
// limited by the fetcher) when no key matches, since the client may have
// rotated its keys.
func (a *clientAssertions) verify(ctx context.Context, client domain.Client, token string) (domain.Assertion, error) {
	if len(client.JWKS) > 0 {
		verified, err := a.verifier.VerifyAssertion(token, client.JWKS, domain.AssertionAlgorithms)
		if err != nil {
			return domain.Assertion{}, authFailed(fmt.Errorf("client assertion: %w", err))
		}
		return verified, nil
	}
	if a.jwks == nil || client.JWKSURI == "" {
		return domain.Assertion{}, authFailed(errors.New("the client has no key set this server can use"))
	}
	var verified domain.Assertion
	for _, fresh := range []bool{false, true} {
		set, err := a.jwks.FetchJWKS(ctx, client.JWKSURI, fresh)
		if e, ok := domain.AsError(err); ok && e.Code == domain.CodeTemporarilyUnavailable {
			return domain.Assertion{}, e
		}
		if err != nil {
			return domain.Assertion{}, domain.ErrInvalidClient("the client's jwks_uri could not be retrieved, or is not a JWK Set").
				WithCause(fmt.Errorf("client assertion: %w", err))
		}
		verified, err = a.verifier.VerifyAssertion(token, set, domain.AssertionAlgorithms)
		if err == nil {
			return verified, nil
		}
		if !errors.Is(err, ports.ErrUnknownKey) {
			return domain.Assertion{}, authFailed(fmt.Errorf("client assertion: %w", err))
		}
	}
	return domain.Assertion{}, authFailed(errors.New("client assertion: no key of the client's jwks_uri matches"))
}
