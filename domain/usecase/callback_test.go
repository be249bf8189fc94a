package usecase_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The upstream IdP's own error codes reach the client as codes valid in an
// authorization response, with the client's state, and never with the
// IdP's text: its refusals as access_denied, its failures as
// temporarily_unavailable (the client may retry), and its complaints
// about our own request as server_error (the operator's to fix).
func TestUpstreamErrorsAreMappedForTheClient(t *testing.T) {
	cases := map[string]domain.ErrorCode{
		"access_denied":           domain.CodeAccessDenied,
		"login_required":          domain.CodeAccessDenied,
		"consent_required":        domain.CodeAccessDenied,
		"interaction_required":    domain.CodeAccessDenied,
		"invalid_scope":           domain.CodeInvalidScope,
		"server_error":            domain.CodeTemporarilyUnavailable,
		"temporarily_unavailable": domain.CodeTemporarilyUnavailable,
		"something_new":           domain.CodeTemporarilyUnavailable,
		"invalid_request":         domain.CodeServerError,
		"unauthorized_client":     domain.CodeServerError,
	}
	for upstreamCode, want := range cases {
		t.Run(upstreamCode, func(t *testing.T) {
			h := newHarness(t, nil)
			c := h.register(t)
			res, err := h.callback(t, h.upstream(t, c), ports.CompleteCallbackCommand{Error: upstreamCode})
			require.Equal(t, want, domain.CodeOf(err), "%v", err)
			e, _ := domain.AsError(err)
			require.False(t, e.NoRedirect, "the client learns the outcome")
			require.Equal(t, e.Internal(), want == domain.CodeServerError, "only our own fault is logged as an error")
			require.Equal(t, c.redirectURI, res.RedirectURI)
			require.Equal(t, "client-state", res.State)
			require.Empty(t, res.Code)
			require.Empty(t, h.idp.exchanges, "no code was exchanged")
			require.Zero(t, h.stored(t))
		})
	}
}

func TestTheCallbackRefusesWhatItCannotTrust(t *testing.T) {
	cases := []struct {
		name       string
		script     func(p *scriptedIdP)
		cmd        func(up ports.UpstreamRedirect) ports.CompleteCallbackCommand // nil: a healthy return
		code       domain.ErrorCode
		noRedirect bool
	}{
		{"a subject with CR LF", func(p *scriptedIdP) { p.identity.Subject = "alice\r\nX-Admin: 1" }, nil, domain.CodeAccessDenied, false},
		{"a 300 kB subject", func(p *scriptedIdP) { p.identity.Subject = strings.Repeat("a", 300_000) }, nil, domain.CodeAccessDenied, false},
		{"an empty subject", func(p *scriptedIdP) { p.identity.Subject = "" }, nil, domain.CodeAccessDenied, false},
		{"a malformed email", func(p *scriptedIdP) { p.identity.Email = "Eve <eve@example.com>" }, nil, domain.CodeAccessDenied, false},
		{"a huge name", func(p *scriptedIdP) { p.identity.Name = strings.Repeat("N", 100_000) }, nil, domain.CodeAccessDenied, false},
		{"an unverifiable ID token", func(p *scriptedIdP) { p.exchangeErr = domain.ErrAccessDenied("ID token verification failed") }, nil, domain.CodeAccessDenied, false},
		{"an unreachable IdP", func(p *scriptedIdP) {
			p.exchangeErr = domain.ErrTemporarilyUnavailable("identity provider unavailable", errors.New("timeout"))
		}, nil, domain.CodeTemporarilyUnavailable, false},
		{"another browser's binding cookie", nil, func(up ports.UpstreamRedirect) ports.CompleteCallbackCommand {
			return ports.CompleteCallbackCommand{State: upstreamState(t, up), Code: "upstream-code", BindingSecret: "someone-elses"}
		}, domain.CodeAccessDenied, true},
		{"no binding cookie", nil, func(up ports.UpstreamRedirect) ports.CompleteCallbackCommand {
			return ports.CompleteCallbackCommand{State: upstreamState(t, up), Code: "upstream-code"}
		}, domain.CodeAccessDenied, true},
		{"neither code nor error", nil, func(up ports.UpstreamRedirect) ports.CompleteCallbackCommand {
			return ports.CompleteCallbackCommand{State: upstreamState(t, up), BindingSecret: up.BindingSecret}
		}, domain.CodeServerError, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if tc.script != nil {
				h.idp.script(tc.script)
			}
			c := h.register(t)
			up := h.upstream(t, c)
			var err error
			if tc.cmd != nil {
				// Exactly this command, as the browser brought it back.
				_, err = h.app.CompleteCallback.Handle(t.Context(), tc.cmd(up))
			} else {
				_, err = h.callback(t, up, ports.CompleteCallbackCommand{})
			}
			require.Equal(t, tc.code, domain.CodeOf(err), "%v", err)
			e, _ := domain.AsError(err)
			require.Equal(t, tc.noRedirect, e.NoRedirect)
			require.Zero(t, h.stored(t), "no grant, code or transaction is left")
		})
	}

	t.Run("the claim's name, never its value, reaches the cause", func(t *testing.T) {
		h := newHarness(t, nil)
		h.idp.script(func(p *scriptedIdP) { p.identity.Subject = "alice\r\nX-Admin: 1" })
		_, err := h.callback(t, h.upstream(t, h.register(t)), ports.CompleteCallbackCommand{})
		var claim *domain.ClaimError
		require.True(t, errors.As(err, &claim), "%v", err)
		require.Equal(t, "sub", claim.Claim)
		require.NotContains(t, err.Error(), "X-Admin")
	})

	t.Run("a state that was never issued, or is used twice, is a page", func(t *testing.T) {
		h := newHarness(t, nil)
		up := h.upstream(t, h.register(t))
		_, err := h.app.CompleteCallback.Handle(t.Context(), ports.CompleteCallbackCommand{State: "forged", Code: "x", BindingSecret: up.BindingSecret})
		e, ok := domain.AsError(err)
		require.True(t, ok && e.NoRedirect, "%v", err)

		_, err = h.callback(t, up, ports.CompleteCallbackCommand{})
		require.NoError(t, err)
		_, err = h.callback(t, up, ports.CompleteCallbackCommand{})
		e, ok = domain.AsError(err)
		require.True(t, ok && e.NoRedirect, "a replayed callback: %v", err)
	})

	t.Run("the exchange uses the transaction's verifier and nonce", func(t *testing.T) {
		h := newHarness(t, nil)
		up := h.upstream(t, h.register(t))
		_, err := h.callback(t, up, ports.CompleteCallbackCommand{Issuer: "https://idp.test"})
		require.NoError(t, err)
		require.Len(t, h.idp.exchanges, 1)
		ex := h.idp.exchanges[0]
		require.Equal(t, "upstream-code", ex.Code)
		require.Equal(t, "https://idp.test", ex.Issuer)
		require.NotEmpty(t, ex.Nonce)
		// The challenge sent upstream is the S256 of the verifier used now.
		require.Contains(t, up.URL, "code_challenge="+challenge(ex.Verifier))
	})
}
