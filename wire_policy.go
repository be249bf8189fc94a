package oidcproxy

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/wire"

	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/ports"
	"github.com/oidcproxy/oidcproxy/providers"
)

// policySet loads the access policy file as the source the use cases, the
// identity provider and the gateway ask. Loading it logs what it holds and
// warns when a public identity provider would admit anyone: a judgement
// across the policy and the provider registry, which only this package
// sees both of.
var policySet = wire.NewSet(
	ProvidePolicy,
	wire.Bind(new(ports.PolicySource), new(*policyfile.Source)),
)

// ProvidePolicy loads the access policy file (POLICY_FILE); without one
// the source holds no policy and everyone the IdP signs in is admitted.
// An invalid file fails the start with every problem listed. It logs what
// the policy holds (counts only: the entries name people) and warns when
// a public identity provider would admit anyone with an account there.
func ProvidePolicy(cfg config.Config, logger *slog.Logger) (*policyfile.Source, error) {
	src, err := policyfile.Load(cfg.PolicyFile)
	if err != nil {
		return nil, err
	}
	if cfg.PolicyFile != "" {
		logger.Info("access policy loaded", PolicyAttrs(src.Summary())...)
	}
	if w := AdmissionWarning(cfg, src.Policy()); w != "" {
		logger.Warn(w)
	}
	return src, nil
}

// PolicyAttrs are the log attributes describing a loaded policy.
func PolicyAttrs(s policyfile.Summary) []any {
	return []any{
		"policy_file", s.Path, "admission", s.Admission, "emails", s.Emails, "domains", s.Domains,
		"subjects", s.Subjects, "groups", s.Groups, "machine_clients", s.MachineClients,
		"group_claims", strings.Join(s.GroupClaims, ", "), "authorization", s.Authorization, "rules", s.Rules,
		"default_deny", s.DefaultDeny, "expressions", s.Expressions,
	}
}

// AdmissionWarning says, for `oidcproxy check` and the start-up log, that
// everyone with an account at a public identity provider can sign in: the
// provider is one (Google without a hosted domain, an Entra common,
// organizations or consumers authority) and p does not restrict admission,
// or restricts it by group or role claims alone. Such claims come from the
// account's own organisation at a shared authority (anyone can create an
// Entra tenant and give themselves any app role), so they restrict nothing
// unless a require condition also pins the organisation (claims.tid). It
// returns "" otherwise.
func AdmissionWarning(cfg config.Config, p *policy.Policy) string {
	section, err := providerSection(cfg)
	if err != nil {
		return ""
	}
	who := providers.OpenToEveryone(section, ProviderSettings(cfg))
	if who == "" {
		return ""
	}
	if p.RestrictsAdmission() {
		st := p.Stats()
		if st.Groups == 0 || st.Requires || st.Emails+st.Domains+st.Subjects+st.MachineClients > 0 || st.AdmissionConditions > 0 {
			return ""
		}
		return fmt.Sprintf("provider %s signs in %s, and the access policy admits by group or role claims alone, which each account's own "+
			"organisation sets: pin the organisation with an admission require condition (for Entra: claims.tid == \"<tenant id>\"; see docs/policy.md)",
			cfg.Provider, who)
	}
	reason := "no access policy file is configured"
	if cfg.PolicyFile != "" {
		reason = "the access policy has no admission section"
	}
	return fmt.Sprintf("provider %s signs in %s, and %s: every such account can get tokens for this MCP server. "+
		"Restrict who may sign in with an admission section in OIDC_PROXY_POLICY_FILE (see docs/policy.md)", cfg.Provider, who, reason)
}
