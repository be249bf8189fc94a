package usecase_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/memstore"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/adapters/tokens"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

// outage is the in-memory store behind a switch that makes every call
// fail as a store fails whose database cannot be reached: an error that
// wraps ports.ErrUnavailable. A real outage is tested end to end on
// PostgreSQL (test/e2e); here the switch lets every use case meet it at
// every store call, which a real database cannot be made to do on cue.
type outage struct {
	*memstore.Store
	down atomic.Bool
}

func (o *outage) err(op string) error {
	if o.down.Load() {
		return fmt.Errorf("outage: %s: connection refused: %w", op, ports.ErrUnavailable)
	}
	return nil
}

func (o *outage) CreateClient(ctx context.Context, c domain.Client) error {
	if err := o.err("create client"); err != nil {
		return err
	}
	return o.Store.CreateClient(ctx, c)
}

func (o *outage) RegisterClient(ctx context.Context, c domain.Client, max int) error {
	if err := o.err("register client"); err != nil {
		return err
	}
	return o.Store.RegisterClient(ctx, c, max)
}

func (o *outage) GetClient(ctx context.Context, id string) (domain.Client, error) {
	if err := o.err("get client"); err != nil {
		return domain.Client{}, err
	}
	return o.Store.GetClient(ctx, id)
}

func (o *outage) CreateTransaction(ctx context.Context, t domain.Transaction) error {
	if err := o.err("create transaction"); err != nil {
		return err
	}
	return o.Store.CreateTransaction(ctx, t)
}

func (o *outage) UpdateTransaction(ctx context.Context, id string, now time.Time, fn func(*domain.Transaction) error) error {
	if err := o.err("update transaction"); err != nil {
		return err
	}
	return o.Store.UpdateTransaction(ctx, id, now, fn)
}

func (o *outage) ConsumeTransaction(ctx context.Context, id string, now time.Time, check func(domain.Transaction) error) (domain.Transaction, error) {
	if err := o.err("consume transaction"); err != nil {
		return domain.Transaction{}, err
	}
	return o.Store.ConsumeTransaction(ctx, id, now, check)
}

func (o *outage) ReplaceTransaction(ctx context.Context, id string, now time.Time, check func(domain.Transaction) (domain.Transaction, error)) (domain.Transaction, error) {
	if err := o.err("replace transaction"); err != nil {
		return domain.Transaction{}, err
	}
	return o.Store.ReplaceTransaction(ctx, id, now, check)
}

func (o *outage) CreateGrant(ctx context.Context, g domain.Grant, c domain.AuthorizationCode) error {
	if err := o.err("create grant"); err != nil {
		return err
	}
	return o.Store.CreateGrant(ctx, g, c)
}

func (o *outage) GetGrant(ctx context.Context, id string, now time.Time) (domain.Grant, error) {
	if err := o.err("get grant"); err != nil {
		return domain.Grant{}, err
	}
	return o.Store.GetGrant(ctx, id, now)
}

func (o *outage) RevokeGrant(ctx context.Context, id string) error {
	if err := o.err("revoke grant"); err != nil {
		return err
	}
	return o.Store.RevokeGrant(ctx, id)
}

func (o *outage) RedeemCode(ctx context.Context, hash string, now time.Time, use domain.CodeUse) (domain.AuthorizationCode, domain.Grant, error) {
	if err := o.err("redeem code"); err != nil {
		return domain.AuthorizationCode{}, domain.Grant{}, err
	}
	return o.Store.RedeemCode(ctx, hash, now, use)
}

func (o *outage) RotateRefreshToken(ctx context.Context, hash string, now time.Time, use domain.RefreshUse, rotate domain.Rotator) (domain.RefreshToken, domain.RefreshDecision, error) {
	if err := o.err("rotate refresh token"); err != nil {
		return domain.RefreshToken{}, 0, err
	}
	return o.Store.RotateRefreshToken(ctx, hash, now, use, rotate)
}

func (o *outage) GetRefreshToken(ctx context.Context, hash string, now time.Time) (domain.RefreshToken, error) {
	if err := o.err("get refresh token"); err != nil {
		return domain.RefreshToken{}, err
	}
	return o.Store.GetRefreshToken(ctx, hash, now)
}

// A store that cannot reach its database makes every use case answer
// temporarily_unavailable (503), never server_error (500): the request
// may succeed when retried, and an operator's 5xx alert on server_error
// keeps meaning "our fault".
func TestAnUnreachableStoreIsTemporarilyUnavailableInEveryUseCase(t *testing.T) {
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	sealer, err := seal.New(key)
	require.NoError(t, err)
	store := &outage{Store: memstore.New()}
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	iss, err := tokens.Open(t.Context(), store, sealer, c)
	require.NoError(t, err)
	settings := usecase.Settings{
		Issuer: issuer, Resource: resource, SupportedScopes: []string{"openid", "mcp"},
		AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, Consent: domain.ConsentAlways,
		IntrospectionSecret: introspectionSecret,
	}
	idp := newScriptedIdP()
	app, err := usecase.NewApplication(store, idp, iss, sealer, c, random{}, nil, nil, discardLogger(), settings)
	require.NoError(t, err)
	h := &harness{app: app, store: store.Store, idp: idp, clock: c}

	cl := h.register(t)
	started, err := app.StartAuthorization.Handle(t.Context(), h.authorizeCommand(cl))
	require.NoError(t, err)
	view, err := app.Consent.Show(t.Context(), started.TransactionID)
	require.NoError(t, err)
	approved, err := app.Consent.Decide(t.Context(), ports.ConsentDecisionCommand{
		TransactionID: view.TransactionID, CSRFToken: view.CSRFToken, Approve: true})
	require.NoError(t, err)
	pending, err := app.StartAuthorization.Handle(t.Context(), h.authorizeCommand(cl))
	require.NoError(t, err)
	pendingView, err := app.Consent.Show(t.Context(), pending.TransactionID)
	require.NoError(t, err)
	toks := h.loginWithConsent(t, cl)
	auth := ports.ClientAuth{ClientID: cl.id, Method: domain.AuthNone}

	store.down.Store(true)
	for name, call := range map[string]func() error{
		"register": func() error {
			_, err := app.RegisterClient.Handle(t.Context(), ports.RegisterClientCommand{RedirectURIs: []string{"http://127.0.0.1:7777/cb"}})
			return err
		},
		"authorize": func() error {
			_, err := app.StartAuthorization.Handle(t.Context(), h.authorizeCommand(cl))
			return err
		},
		"consent page": func() error {
			_, err := app.Consent.Show(t.Context(), pending.TransactionID)
			return err
		},
		"consent decision": func() error {
			_, err := app.Consent.Decide(t.Context(), ports.ConsentDecisionCommand{
				TransactionID: pendingView.TransactionID, CSRFToken: pendingView.CSRFToken, Approve: true})
			return err
		},
		"callback": func() error {
			_, err := h.callback(t, *approved.Upstream, ports.CompleteCallbackCommand{})
			return err
		},
		"token": func() error {
			_, err := h.exchange(t, cl, "some-code")
			return err
		},
		"refresh": func() error {
			_, err := h.refresh(t, cl, toks.RefreshToken)
			return err
		},
		"revoke": func() error {
			return app.Revoke.Handle(t.Context(), ports.RevokeCommand{Client: auth, Token: toks.RefreshToken})
		},
		"introspect": func() error {
			_, err := app.Introspect.Handle(t.Context(), ports.IntrospectCommand{Secret: introspectionSecret, Token: toks.AccessToken})
			return err
		},
		"bearer check": func() error {
			_, err := app.VerifyAccessToken.Handle(t.Context(), ports.VerifyAccessTokenCommand{Token: toks.AccessToken, Resource: resource})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := call()
			require.Equal(t, domain.CodeTemporarilyUnavailable, domain.CodeOf(err), "%v", err)
			require.ErrorIs(t, err, ports.ErrUnavailable, "the cause is kept for the log")
			e, _ := domain.AsError(err)
			require.NotContains(t, e.Description, "connection refused", "the cause is never shown")
		})
	}
}

// loginWithConsent runs a whole flow through the consent step.
func (h *harness) loginWithConsent(t *testing.T, c client) ports.TokenResult {
	t.Helper()
	started, err := h.app.StartAuthorization.Handle(t.Context(), h.authorizeCommand(c))
	require.NoError(t, err)
	view, err := h.app.Consent.Show(t.Context(), started.TransactionID)
	require.NoError(t, err)
	up, err := h.app.Consent.Decide(t.Context(), ports.ConsentDecisionCommand{TransactionID: view.TransactionID, CSRFToken: view.CSRFToken, Approve: true})
	require.NoError(t, err)
	res, err := h.callback(t, *up.Upstream, ports.CompleteCallbackCommand{})
	require.NoError(t, err)
	tok, err := h.exchange(t, c, res.Code)
	require.NoError(t, err)
	return tok
}

// The use cases decide in one place (serverError) how a failure of ours is
// reported; a direct domain.ErrServerError would bypass the rule that an
// unreachable dependency is temporarily_unavailable.
func TestTheUseCasesReportServerErrorsOnlyThroughTheirOneHelper(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "errors.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "ErrServerError" {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "domain" {
					t.Errorf("%s: domain.ErrServerError used directly; use serverError", fset.Position(sel.Pos()))
				}
			}
			return true
		})
	}
}
