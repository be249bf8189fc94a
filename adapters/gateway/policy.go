package gateway

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/policy"
	"github.com/oidcproxy/oidcproxy/ports"
)

// Per-request authorization. Once the bearer token is verified and the body
// received, the gateway reads the JSON-RPC message (jsonrpc.go) and asks
// the policy in force whether this caller may make this request; a refused
// request never reaches the MCP server. The answer to a list request the
// policy can hide entries of is filtered on its way back (filter.go).
//
// Nothing of this runs without a policy that authorizes requests: the
// body is then not even parsed, unless the request carries the headers
// that mirror it, which are compared with it.

// The outcomes Observer.Decided receives.
const (
	DecisionAllowed           = "allowed"
	DecisionInsufficientScope = "insufficient_scope"
	DecisionForbidden         = "forbidden"
)

// auditRequestDenied is the audit event of a request the policy refused.
const auditRequestDenied = "mcp_request_denied"

// policyGate is what the gateway needs to apply the policy.
type policyGate struct {
	source ports.PolicySource
	// metadataURL goes into the insufficient_scope challenges, whose scope
	// lists differ per refusal.
	metadataURL string
}

func newPolicyGate(opts Options) policyGate {
	return policyGate{source: opts.Policy, metadataURL: opts.ResourceMetadataURL}
}

// current returns the policy in force, nil for none.
func (pg *policyGate) current() *policy.Policy {
	if pg.source == nil {
		return nil
	}
	return pg.source.Policy()
}

// authorize decides the request whose token was verified as access and
// whose body f holds. It returns false when it has answered the request
// itself: a body it cannot read, headers that contradict the body, or a
// refusal.
func (g *Gateway) authorize(w http.ResponseWriter, r *http.Request, access *ports.VerifiedAccess, f *forward) bool {
	p := g.pol.current()
	mirrors := hasMirrors(r.Header)
	if !p.Authorizes() && !mirrors {
		return true
	}
	if f.body == nil {
		if mirrors {
			g.refuseRPC(w, r, http.StatusBadRequest, nil, rpcHeaderMismatch,
				"Header mismatch: Mcp-Method or Mcp-Name without a JSON-RPC message in the body")
			return false
		}
		if r.Method == http.MethodGet && mayHideAny(p) {
			// A resumed event stream may replay the answer to a list
			// request made before, and a server that breaks the rule
			// that a standalone stream carries no responses could send
			// one there too; which request it answers is not known
			// here, so any list answer on it is filtered.
			f.in = callerOf(access)
			f.list = listFilter{ctx: r.Context(), policy: p, in: &f.in, hidden: g.observe.Hidden}
			f.filtering = true
		}
		return true
	}
	msg, fault := readMessage(f.body)
	if fault != nil {
		id := msg.id
		if fault.code == rpcParseError {
			// JSON-RPC 2.0 5.1: the id of a body that is not JSON is null.
			id = nil
		}
		g.refuseRPC(w, r, http.StatusBadRequest, id, fault.code, fault.message)
		return false
	}
	if mirrors {
		if why := checkMirrors(r.Header, &msg); why != "" {
			g.refuseRPC(w, r, http.StatusBadRequest, msg.id, rpcHeaderMismatch, why)
			return false
		}
	}
	if msg.kind == rpcResponse || !p.Authorizes() {
		// A client's answer to a server's request names nothing to decide.
		return true
	}
	f.in = callerOf(access)
	d := p.Authorize(r.Context(), &f.in, policy.Call{Method: msg.method, Name: msg.name})
	if !d.Allowed() {
		g.deny(w, r, access, &msg, d)
		return false
	}
	if g.observe.Decided != nil {
		g.observe.Decided(r.Context(), msg.method, DecisionAllowed)
	}
	if k := policy.ListedKind(msg.method); k != policy.KindOther && msg.kind == rpcRequest && p.MayHide(k) {
		f.list = listFilter{ctx: r.Context(), policy: p, in: &f.in, kind: k, id: msg.id, method: msg.method, hidden: g.observe.Hidden}
		f.filtering = true
	}
	return true
}

func mayHideAny(p *policy.Policy) bool {
	return p.MayHide(policy.KindTool) || p.MayHide(policy.KindPrompt) || p.MayHide(policy.KindResource)
}

// callerOf is the caller as the policy sees it: the identity the upstream
// IdP verified when the grant was made, and the token's client and scopes.
// A machine client's grant carries no identity; it gets the machine input,
// so "!machine" conditions and machine-client entries see it as what it is
// instead of as a person without claims.
//
// The subject is the grant's, never the identity's own claim: the grant's
// subject is the one the proxy mapped when it made the grant (a partner
// IdP's users are qualified by their issuer), and it is what revocation by
// user and the forwarded identity header use too. Email is never trusted
// without email_verified here, whatever the provider: a grant made from an
// enterprise assertion may carry another issuer's address.
func callerOf(access *ports.VerifiedAccess) policy.Input {
	clientID := access.Token.ClientID
	if clientID == "" {
		clientID = access.Grant.ClientID
	}
	if access.Grant.Machine || access.Token.Machine {
		return policy.MachineInput(clientID, access.Token.Scopes)
	}
	in := policy.UserInput(access.Grant.Identity, clientID, access.Token.Scopes, false)
	in.Subject = access.Grant.Subject
	if in.Subject == "" {
		in.Subject = access.Token.Subject
	}
	return in
}

// deny answers a request the policy refused, audits it and counts it.
//
// Missing scopes alone get 403 with an insufficient_scope challenge whose
// scope lists every scope the gateway requires and every scope the
// matching rules require, held or not: a client that asks for exactly
// those gets a token that passes (MCP step-up authorization, 2025-11-25).
// Any other refusal gets 403 with a JSON-RPC error naming what was refused
// and no challenge: more scopes would not help. The rule that refused is
// never shown to the client, only to the audit log.
func (g *Gateway) deny(w http.ResponseWriter, r *http.Request, access *ports.VerifiedAccess, msg *rpcMessage, d policy.CallDecision) {
	what := describe(msg)
	outcome := DecisionForbidden
	var message string
	if d.Outcome == policy.DeniedScope {
		outcome = DecisionInsufficientScope
		scopes := append([]string(nil), g.requiredScopes...)
		for _, s := range d.RequiredScopes {
			if !containsString(scopes, s) {
				scopes = append(scopes, s)
			}
		}
		challenge := oauthhttp.NewBearerChallenge(g.pol.metadataURL, scopes)
		w.Header()["Www-Authenticate"] = []string{challenge.Error(domain.CodeInsufficientScope, "")}
		message = "Insufficient scope: " + what + " needs the scopes " + strings.Join(scopes, " ")
	} else {
		message = "Forbidden: " + what + " is not allowed for this caller"
	}
	writeBody(w, http.StatusForbidden, rpcErrorBody(msg.id, rpcForbidden, message))
	if g.observe.Decided != nil {
		g.observe.Decided(r.Context(), msg.method, outcome)
	}
	attrs := []any{
		"client_id", access.Token.ClientID, "subject", access.Grant.Subject, "grant_id", access.Grant.ID,
		"mcp_method", shorten(msg.method), "decision", outcome, "reason", d.Reason,
	}
	if msg.name != "" {
		attrs = append(attrs, "mcp_name", shorten(msg.name))
	}
	if d.Err != nil {
		attrs = append(attrs, "cause", d.Err.Error())
	}
	oauthhttp.Audit(g.log, r, auditRequestDenied, attrs...)
}

// describe names what a request asks for, as the client wrote it.
func describe(msg *rpcMessage) string {
	kind := policy.KindOf(msg.method)
	if kind == policy.KindOther {
		return "method " + quote(msg.method)
	}
	return kind.String() + " " + quote(msg.name)
}

// quote renders a client-supplied name for a message, shortened.
func quote(s string) string { return `"` + shorten(s) + `"` }

// refuseRPC answers a request the gateway will not forward with a
// JSON-RPC error, echoing the request's id when it could be read.
func (g *Gateway) refuseRPC(w http.ResponseWriter, r *http.Request, status int, id []byte, code int, message string) {
	writeBody(w, status, rpcErrorBody(id, code, message))
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "gateway: request refused",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.String("reason", message))
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
