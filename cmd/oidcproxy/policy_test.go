package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/oidcproxy/oidcproxy/test/browser"
	"github.com/oidcproxy/oidcproxy/test/idp"
)

// checkEnv is the environment of `oidcproxy check` in front of up with
// provider, and the policy file at policy when it is not "".
func checkEnv(up *idp.Faulty, provider, policy string) map[string]string {
	env := map[string]string{
		"OIDC_PROXY_PROVIDER":        provider,
		"OIDC_PROXY_BASE_URL":        "http://localhost:8000",
		"OIDC_PROXY_CONFIG_URL":      up.ConfigURL,
		"OIDC_PROXY_CLIENT_ID":       "c",
		"OIDC_PROXY_CLIENT_SECRET":   "s",
		"OIDC_PROXY_TIMEOUT_SECONDS": "5",
	}
	if policy != "" {
		env["OIDC_PROXY_POLICY_FILE"] = policy
	}
	return env
}

func writePolicy(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestCheckPrintsThePolicySummaryWithoutItsEntries(t *testing.T) {
	up := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "c", ClientSecret: "s"})
	path := writePolicy(t, `
group_claims: [groups, realm_access.roles]
admission:
  allow:
    emails: [alice@example.com]
    domains: [example.com]
    groups: [mcp-users, admins]
authorization:
  default: deny
  rules:
    - tools: ["get_*"]
    - tools: ["delete_*"]
      groups: [admins]
      condition: '"admins" in groups'
`)
	var out, errOut bytes.Buffer

	code := run(t.Context(), []string{"check"}, envOf(checkEnv(up, "oidc", path)), &out, &errOut)

	require.Equal(t, 0, code, out.String()+errOut.String())
	require.Contains(t, out.String(), "policy: ok\n  policy file "+path+"\n  group claims: groups, realm_access.roles\n"+
		"  admission: 1 email, 1 domain, 0 subjects, 2 groups, 0 machine clients, 0 conditions\n"+
		"  authorization: 2 rules (1 with a condition), default deny\n  expressions: 1\n")
	require.NotContains(t, out.String(), "alice@example.com", "counts only: the entries name people")
	require.NotContains(t, out.String(), "WARNING")
}

func TestCheckListsEveryProblemOfAnInvalidPolicyAndFails(t *testing.T) {
	up := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "c", ClientSecret: "s"})
	path := writePolicy(t, `
admission:
  allow:
    domains: ["*.example.com"]
    condition: 'claims.admin + 1'
authorization:
  rules:
    - tools: [x]
      scope: [write]
`)
	var out, errOut bytes.Buffer

	code := run(t.Context(), []string{"check"}, envOf(checkEnv(up, "oidc", path)), &out, &errOut)

	require.Equal(t, 1, code)
	report := out.String()
	require.Contains(t, report, "upstream: ok", "the other checks still run")
	require.Contains(t, report, "policy: FAILED")
	require.Contains(t, report, "invalid policy (4 problems)")
	for _, want := range []string{`unknown key "scope"`, "subdomains are not matched by a pattern", "admission.allow.condition", "requires nothing"} {
		require.Contains(t, report, want)
	}
}

func TestCheckWarnsWhenAPublicProviderAdmitsAnyone(t *testing.T) {
	restricting := "admission:\n  allow:\n    domains: [example.com]\n"
	toolsOnly := "authorization:\n  rules:\n    - tools: [x]\n      scopes: [write]\n"
	rolesOnly := "group_claims: [roles]\nadmission:\n  allow:\n    groups: [MCP.User]\n"
	rolesInOneTenant := rolesOnly + "  require: 'claims.tid == \"5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\"'\n"
	cases := []struct {
		name     string
		provider string
		up       func(t *testing.T) *idp.Faulty
		args     []string
		policy   string
		warning  string // "" for none
	}{
		{"google without a policy", "google", google, nil, "", "provider google signs in anyone with a Google account, and no access policy file is configured"},
		{"google with a policy that only restricts tools", "google", google, nil, toolsOnly, "the access policy has no admission section"},
		{"google with an admission policy", "google", google, nil, restricting, ""},
		{"google with a hosted domain", "google", google, []string{"--google-hosted-domain", "example.com"}, "", ""},
		{"azure common", "azure", azure("common"), []string{"--azure-tenant-id", "common"}, "", "anyone with a Microsoft work, school or personal account"},
		{"azure organizations", "azure", azure("organizations"), nil, "", "anyone with a work or school account of any Microsoft Entra tenant"},
		{"azure organizations with an admission policy", "azure", azure("organizations"), nil, restricting, ""},
		// Anyone can make a tenant and give themselves an app role.
		{"azure organizations admitting by roles alone", "azure", azure("organizations"), nil, rolesOnly, "admits by group or role claims alone"},
		{"azure organizations admitting by roles of one tenant", "azure", azure("organizations"), nil, rolesInOneTenant, ""},
		{"azure with one tenant", "azure", azure("contoso.example"), nil, "", ""},
		{"a private IdP", "oidc", func(t *testing.T) *idp.Faulty {
			return idp.NewFaulty(t, idp.FaultyOptions{ClientID: "c", ClientSecret: "s"})
		}, nil, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			policy := ""
			if tc.policy != "" {
				policy = writePolicy(t, tc.policy)
			}
			env := checkEnv(tc.up(t), tc.provider, policy)
			if tc.provider == "azure" {
				env["OIDC_PROXY_REQUIRED_SCOPES"] = "mcp.read"
			}
			var out, errOut bytes.Buffer

			code := run(t.Context(), append([]string{"check"}, tc.args...), envOf(env), &out, &errOut)

			require.Equal(t, 0, code, out.String()+errOut.String())
			if tc.warning == "" {
				require.NotContains(t, out.String(), "WARNING", out.String())
				return
			}
			line := lineWith(out.String(), "WARNING: ")
			require.Contains(t, line, tc.warning)
			require.Contains(t, line, "docs/policy.md")
		})
	}
}

func google(t *testing.T) *idp.Faulty {
	return idp.NewGoogle(t, idp.GoogleOptions{FaultyOptions: idp.FaultyOptions{ClientID: "c", ClientSecret: "s"}})
}

func azure(tenant string) func(t *testing.T) *idp.Faulty {
	return func(t *testing.T) *idp.Faulty {
		return idp.NewAzure(t, idp.AzureOptions{FaultyOptions: idp.FaultyOptions{ClientID: "c", ClientSecret: "s"}, Tenant: tenant})
	}
}

func lineWith(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestSIGHUPReloadsThePolicyAndAnInvalidFileKeepsTheOneInForce(t *testing.T) {
	env := serveEnv(t, "", filepath.Join(t.TempDir(), "oidcproxy.db"))
	base := env["OIDC_PROXY_BASE_URL"]
	op := idp.StartOPWithUsers(t, []idp.User{
		{Subject: "alice-sub", Username: "alice", Password: "alice-pw", Email: "alice@example.com", EmailVerified: true},
		{Subject: "bob-sub", Username: "bob", Password: "bob-pw", Email: "bob@corp.example", EmailVerified: true},
	}, idp.Client{ID: "proxy", Secret: "proxy-secret", RedirectURIs: []string{base + "/auth/callback"}})
	env["OIDC_PROXY_CONFIG_URL"] = op.ConfigURL
	path := writePolicy(t, "admission:\n  allow:\n    domains: [corp.example]\n")
	env["OIDC_PROXY_POLICY_FILE"] = path

	_, errOut := serveLogged(t, env)
	hangUp := func() { require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP)) }

	require.True(t, admitted(t, base, "bob", "bob-pw"), "bob, by his domain")
	require.False(t, admitted(t, base, "alice", "alice-pw"))

	require.NoError(t, os.WriteFile(path, []byte("admission:\n  allow:\n    emails: [alice@example.com]\n"), 0o600))
	hangUp()
	require.Eventually(t, func() bool { return admitted(t, base, "alice", "alice-pw") }, 10*time.Second, 50*time.Millisecond,
		"SIGHUP did not reload the policy: %s", errOut.String())
	require.False(t, admitted(t, base, "bob", "bob-pw"))

	require.NoError(t, os.WriteFile(path, []byte("admission:\n  allow:\n    emails: [not an address]\n"), 0o600))
	hangUp()
	require.Eventually(t, func() bool { return strings.Contains(errOut.String(), "the access policy was not reloaded") },
		10*time.Second, 20*time.Millisecond)
	require.Contains(t, errOut.String(), `admission.allow.emails[0]: "not an address" is not an email address`)
	require.True(t, admitted(t, base, "alice", "alice-pw"), "the policy in force stays")
	require.False(t, admitted(t, base, "bob", "bob-pw"))
}

// admitted signs user in through a new client of the proxy at base and
// reports whether the flow reached the client with a code (true) or ended
// on the refusal page (false).
func admitted(t *testing.T, base, user, password string) bool {
	t.Helper()
	const redirect = "http://127.0.0.1:9/callback"
	resp, err := http.Post(base+"/register", "application/json",
		strings.NewReader(`{"client_name":"policy test","redirect_uris":["`+redirect+`"]}`))
	require.NoError(t, err)
	var reg struct {
		ClientID string `json:"client_id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&reg))
	resp.Body.Close()
	cfg := &oauth2.Config{ClientID: reg.ClientID, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: base + "/authorize", TokenURL: base + "/token"}}
	b := browser.New(user, password)
	b.StopAt = redirect
	res, err := b.Authorize(t.Context(), cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("resource", base+"/mcp")))
	require.NoError(t, err)
	if res.Status == http.StatusForbidden {
		require.Contains(t, res.Body, "is not allowed to use this application")
		return false
	}
	require.NotEmpty(t, res.URL.Query().Get("code"), "neither a code nor the refusal page: %d %s", res.Status, res.URL)
	return true
}

func TestServeRefusesToStartWithAnInvalidPolicyListingEveryProblem(t *testing.T) {
	up := idp.NewFaulty(t, idp.FaultyOptions{ClientID: "proxy", ClientSecret: "proxy-secret"})
	env := serveEnv(t, up.ConfigURL, filepath.Join(t.TempDir(), "oidcproxy.db"))
	env["OIDC_PROXY_POLICY_FILE"] = writePolicy(t, "admission:\n  allow:\n    domains: [\"*.example.com\"]\n    emails: [nobody]\n")
	var out, errOut bytes.Buffer

	code := run(t.Context(), []string{"serve"}, envOf(env), &out, &errOut)

	require.Equal(t, 1, code)
	require.Contains(t, errOut.String(), "cannot start")
	require.Contains(t, errOut.String(), "invalid policy (2 problems)")
	require.Contains(t, errOut.String(), "subdomains are not matched by a pattern")
	require.Contains(t, errOut.String(), `"nobody" is not an email address`)
}
