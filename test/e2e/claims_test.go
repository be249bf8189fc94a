package e2e_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/test/idp"
)

// An identity provider that signs whatever its directory holds can hand
// the proxy claims that would break every later use of the grant (a
// subject with a line break cannot travel in the gateway's identity
// header; a huge one bloats every request). The callback refuses them
// with access_denied, stores nothing, and logs which claim was wrong but
// never its value.
func TestHostileIdentityClaimsEndTheSignInWithAccessDenied(t *testing.T) {
	// The client never completes a sign-in until the control below:
	// keeping unused clients lets the sweeps count only what a sign-in
	// stored.
	p, f := startWithFaulty(t, withEnv("UNUSED_CLIENT_TTL", "0"))
	c := p.register(t, nil)
	cases := []struct {
		name   string
		claims map[string]any
		claim  string // the claim the log line names
		value  string // must not reach the log
	}{
		{"a subject with CR LF", map[string]any{"sub": "alice\r\nX-Admin: yes"}, "sub", "X-Admin: yes"},
		{"a 300 kB subject", map[string]any{"sub": strings.Repeat("s", 300_000)}, "sub", strings.Repeat("s", 300)},
		{"a malformed email", map[string]any{"email": "Mallory <mallory@evil.example>", "email_verified": true}, "email", "mallory@evil.example"},
		{"an email longer than 254 bytes", map[string]any{"email": strings.Repeat("e", 250) + "@x.example", "email_verified": true}, "email", strings.Repeat("e", 250)},
		{"a huge name", map[string]any{"name": strings.Repeat("N", 100_000)}, "name", strings.Repeat("N", 300)},
		{"a name with a line break", map[string]any{"name": "Eve\nlevel=ERROR msg=forged"}, "name", "msg=forged"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.Set(idp.Faults{IDTokenClaims: tc.claims})
			logsBefore := len(p.Logs.String())
			fl := newFlow(t, c)
			res := fl.Browser.get(t, p.toCallback(t, fl).String())
			require.Equal(t, http.StatusFound, res.Status, res.Body)
			q := res.Location.Query()
			require.Equal(t, "access_denied", q.Get("error"))
			require.Equal(t, fl.State, q.Get("state"))
			require.Empty(t, q.Get("code"))

			logs := p.Logs.String()[logsBefore:]
			require.Contains(t, logs, "upstream claim "+tc.claim)
			require.NotContains(t, logs, tc.value, "the claim's value reached the log")
		})
	}

	// Nothing was stored: once every possible grant, code and token has
	// expired, a sweep finds nothing to remove. (The same sweep after a
	// successful sign-in removes its grant, code and refresh token, as the
	// control below shows.)
	p.Clock.Advance(1000 * time.Hour)
	removed, err := p.App.Application().SweepExpired.Handle(t.Context())
	require.NoError(t, err)
	require.Zero(t, removed, "a refused sign-in left records behind")

	t.Run("control: a healthy sign-in leaves a grant to sweep", func(t *testing.T) {
		f.Set(idp.Faults{})
		p.login(t, c)
		p.Clock.Advance(1000 * time.Hour)
		removed, err := p.App.Application().SweepExpired.Handle(t.Context())
		require.NoError(t, err)
		require.Equal(t, 3, removed, "the grant, its code and its refresh token")
	})
}

// An identity provider that reports its own failure (error=server_error,
// or a code the proxy does not know) is unavailable, not broken: the
// client gets temporarily_unavailable and may retry, and the proxy logs a
// warning, keeping Error for its own faults.
func TestAnUpstreamServerErrorIsReportedAsTheUpstreamsFailure(t *testing.T) {
	p, f := startWithFaulty(t)
	c := p.register(t, nil)
	for _, upstreamCode := range []string{"server_error", "temporarily_unavailable", "something_new"} {
		t.Run(upstreamCode, func(t *testing.T) {
			f.Set(idp.Faults{AuthorizeError: upstreamCode, AuthorizeErrorDescription: "node 7 crashed"})
			logsBefore := len(p.Logs.String())
			fl := newFlow(t, c)
			res := fl.Browser.get(t, p.toCallback(t, fl).String())
			require.Equal(t, http.StatusFound, res.Status, res.Body)
			q := res.Location.Query()
			require.Equal(t, "temporarily_unavailable", q.Get("error"))
			require.Equal(t, fl.State, q.Get("state"))
			require.NotContains(t, res.Location.String(), "node 7")

			logs := p.Logs.String()[logsBefore:]
			require.Contains(t, logs, `"level":"WARN","msg":"request failed"`)
			require.NotContains(t, logs, `"level":"ERROR"`)
		})
	}
}
