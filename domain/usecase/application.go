package usecase

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/oidcproxy/oidcproxy/ports"
)

// NewApplication builds every use case from the outbound ports and the
// settings, each handler through its own constructor with only what it
// needs. documents may be nil (client ID metadata documents are then
// off), and so may policies (everyone the IdP signs in is then admitted);
// every other dependency is required, and every missing one or invalid
// setting is reported at once, so a wiring mistake fails at start-up
// rather than at the first request. The options turn on what needs more
// ports: private_key_jwt (WithClientAssertions) and the jwt-bearer grant
// (WithIDJAG, with TrustedIDJAGIssuers and IDJAGClients set). The
// client_credentials grant is always on: only clients an operator created
// can use it.
func NewApplication(store ports.Store, provider ports.IdentityProvider, tokens ports.TokenIssuer, sealer ports.Sealer,
	clock ports.Clock, random ports.Random, documents ports.MetadataFetcher, policies ports.PolicySource, logger *slog.Logger, s Settings, opts ...Option,
) (ports.Application, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	err := errors.Join(need("NewApplication",
		dep("store", store), dep("identity provider", provider), dep("token issuer", tokens), dep("sealer", sealer),
		dep("clock", clock), dep("random source", random), dep("logger", logger),
	), s.validate())
	if s.IDJAG() && (isNil(o.verifier) || isNil(o.issuerKeys)) {
		err = errors.Join(err, errors.New("usecase: NewApplication: the jwt-bearer grant needs the assertion verifier and the issuers' keys"))
	}
	if err != nil {
		return ports.Application{}, err
	}
	clients, err := NewClients(store, documents, s.Clients())
	if err != nil {
		return ports.Application{}, err
	}
	if !isNil(o.verifier) {
		clients.acceptAssertions(&clientAssertions{
			verifier: o.verifier, jwks: o.jwks, replay: store, clock: clock, audience: s.assertionAudience(),
		})
	}
	register, err1 := NewRegisterClient(store, clock, random, s.Clients())
	if register != nil {
		register.keys = clients.keyChecker()
	}
	authorize, err2 := NewStartAuthorization(clients, store, provider, clock, random, s.Authorize())
	consent, err3 := NewConsent(clients, store, provider, clock, random, s.ForwardResource)
	callback, err4 := NewCompleteCallback(store, store, provider, policies, sealer, clock, random, s.RefreshTokenTTL)
	exchange, err5 := NewExchangeToken(clients, store, tokens, clock, random, s.Tokens())
	refresh, err6 := NewRefreshToken(clients, store, provider, policies, sealer, tokens, clock, random, s.Tokens())
	revoke, err7 := NewRevoke(clients, store, tokens, provider, sealer, clock, logger, s.Issuer)
	verify, err8 := NewVerifyAccessToken(tokens, store, sealer, clock, s.Issuer)
	introspect, err9 := NewIntrospect(clients, tokens, store, clock, s.Issuer, s.IntrospectionSecret)
	sweep, err10 := NewSweepExpired(store, store, clock, s.Sweep())
	machines, err11 := NewClientCredentials(clients, store, tokens, clock, random, policies, s.Resource, s.Tokens())
	var (
		enterprise *JWTBearerHandler
		err12      error
	)
	if s.IDJAG() {
		upstream := ""
		if p, ok := provider.(ports.IssuerIdentifier); ok {
			upstream = p.Issuer()
		}
		enterprise, err12 = NewJWTBearer(clients, o.verifier, o.issuerKeys, store, store, tokens, clock, random, policies, upstream, s)
	}
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11, err12); err != nil {
		return ports.Application{}, err
	}
	app := ports.Application{
		RegisterClient:     register,
		StartAuthorization: authorize,
		Consent:            consent,
		CompleteCallback:   callback,
		ExchangeToken:      exchange,
		RefreshToken:       refresh,
		Revoke:             revoke,
		VerifyAccessToken:  verify,
		Introspect:         introspect,
		SweepExpired:       sweep,
		ClientCredentials:  machines,
	}
	if enterprise != nil {
		app.JWTBearer = enterprise // a nil *JWTBearerHandler must not become a non-nil interface
	}
	return app, nil
}

// dependency is one argument of a constructor, named for its error.
type dependency struct {
	name  string
	value any
}

func dep(name string, value any) dependency { return dependency{name: name, value: value} }

// need reports every nil dependency of constructor, so that a wiring
// mistake names all its gaps at once (Wild Workouts' "constructors reject
// nil dependencies"). A typed nil (a nil *Store in an interface) counts as
// nil: calling it would panic just the same.
func need(constructor string, deps ...dependency) error {
	var errs []error
	for _, d := range deps {
		if isNil(d.value) {
			errs = append(errs, fmt.Errorf("usecase: %s: nil %s", constructor, d.name))
		}
	}
	return errors.Join(errs...)
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
