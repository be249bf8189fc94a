package usecase_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

// When the consent page is shown: always (the default), only for clients
// and scopes this browser has not approved (remember), or never (off).
func TestTheConsentModeDecidesWhetherTheUserIsAsked(t *testing.T) {
	other := func(client) []ports.RememberedConsent {
		return []ports.RememberedConsent{{ClientID: "another-client", Scopes: []string{"openid", "mcp"}}}
	}
	cases := []struct {
		name       string
		mode       domain.ConsentMode
		remembered func(c client) []ports.RememberedConsent
		asked      bool
	}{
		{"always", domain.ConsentAlways, nil, true},
		{"always, even when remembered", domain.ConsentAlways, rememberedFor("openid", "mcp"), true},
		{"remember, nothing remembered", domain.ConsentRemember, nil, true},
		{"remember, the same scopes remembered", domain.ConsentRemember, rememberedFor("openid", "mcp"), false},
		{"remember, more scopes remembered", domain.ConsentRemember, rememberedFor("openid", "mcp", "more"), false},
		{"remember, fewer scopes remembered", domain.ConsentRemember, rememberedFor("openid"), true},
		{"remember, another client remembered", domain.ConsentRemember, other, true},
		{"off", domain.ConsentOff, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(s *usecase.Settings) { s.Consent = tc.mode })
			c := h.register(t)
			cmd := h.authorizeCommand(c)
			if tc.remembered != nil {
				cmd.RememberedConsent = tc.remembered(c)
			}
			res, err := h.app.StartAuthorization.Handle(t.Context(), cmd)
			require.NoError(t, err)
			if !tc.asked {
				require.NotNil(t, res.Upstream)
				require.Empty(t, res.TransactionID)
				return
			}
			require.Nil(t, res.Upstream)
			require.NotEmpty(t, res.TransactionID)

			// The page then decides: approval goes upstream, bound to this
			// browser; its CSRF token works once.
			view, err := h.app.Consent.Show(t.Context(), res.TransactionID)
			require.NoError(t, err)
			require.Equal(t, c.id, view.ClientID)
			decided, err := h.app.Consent.Decide(t.Context(), ports.ConsentDecisionCommand{TransactionID: res.TransactionID, CSRFToken: view.CSRFToken, Approve: true})
			require.NoError(t, err)
			require.NotNil(t, decided.Upstream)
			require.NotEmpty(t, decided.Upstream.BindingSecret)
			_, err = h.app.Consent.Decide(t.Context(), ports.ConsentDecisionCommand{TransactionID: res.TransactionID, CSRFToken: view.CSRFToken, Approve: true})
			require.Error(t, err)
			e, _ := domain.AsError(err)
			require.True(t, e.NoRedirect, "a stale consent form is a page, never a redirect")
		})
	}
}

// rememberedFor is this browser's earlier approval of the test's client
// for scopes.
func rememberedFor(scopes ...string) func(c client) []ports.RememberedConsent {
	return func(c client) []ports.RememberedConsent {
		return []ports.RememberedConsent{{ClientID: c.id, Scopes: scopes}}
	}
}

func TestDenyingConsentSendsAccessDeniedToTheClient(t *testing.T) {
	h := newHarness(t, func(s *usecase.Settings) { s.Consent = domain.ConsentAlways })
	c := h.register(t)
	res, err := h.app.StartAuthorization.Handle(t.Context(), h.authorizeCommand(c))
	require.NoError(t, err)
	view, err := h.app.Consent.Show(t.Context(), res.TransactionID)
	require.NoError(t, err)

	decided, err := h.app.Consent.Decide(t.Context(), ports.ConsentDecisionCommand{TransactionID: res.TransactionID, CSRFToken: view.CSRFToken})
	require.Equal(t, domain.CodeAccessDenied, domain.CodeOf(err))
	require.Equal(t, c.redirectURI, decided.RedirectURI)
	require.Equal(t, "client-state", decided.State)
	require.Zero(t, h.stored(t), "a denied request leaves nothing behind")
}
