package policy

import (
	"context"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Input is the caller a decision is about: a person signed in at the
// upstream IdP, or a machine client authenticated by its own credentials.
// The gateway fills one per request from the verified access token and its
// grant; it is passed by pointer so that deciding copies nothing.
type Input struct {
	// Subject is the user's subject at the IdP; for a machine, its client id.
	Subject string
	// ClientID is the OAuth client the token was issued to.
	ClientID string
	// Machine marks a client acting for itself (client_credentials): no
	// person, no email, no claims. Only machine-client entries admit it.
	Machine bool
	// Email is the address the IdP reported; it counts only when verified.
	Email string
	// EmailVerified is the IdP's email_verified claim.
	EmailVerified bool
	// TrustEmail says the provider verifies every address it returns, so
	// EmailVerified is not needed (a preset sets it for an IdP that never
	// reports an unverified address but omits the claim).
	TrustEmail bool
	// Claims are the verified ID-token (and userinfo) claims, as decoded
	// from JSON.
	Claims map[string]any
	// Scopes are the scopes of the access token; admission ignores them.
	Scopes []string
}

// UserInput builds the Input for a person from the identity the IdP
// verified, the client the token is for and its scopes. trustEmail is the
// provider's promise that every address it returns is verified.
func UserInput(id domain.Identity, clientID string, scopes []string, trustEmail bool) Input {
	return Input{
		Subject:       id.Subject,
		ClientID:      clientID,
		Email:         id.Email,
		EmailVerified: id.EmailVerified,
		TrustEmail:    trustEmail,
		Claims:        id.Claims,
		Scopes:        scopes,
	}
}

// MachineInput builds the Input for a machine client acting for itself.
func MachineInput(clientID string, scopes []string) Input {
	return Input{Subject: clientID, ClientID: clientID, Machine: true, Scopes: scopes}
}

// EmailTrusted reports whether the email may be matched by email and
// domain entries: only a verified address proves the caller owns it, and
// anyone can type an unverified one at many IdPs.
func (in *Input) EmailTrusted() bool {
	return !in.Machine && in.Email != "" && (in.EmailVerified || in.TrustEmail)
}

// Facts is what a Condition sees: the caller, the values of the policy's
// group claims, and for authorization the request.
type Facts struct {
	Input *Input
	// Groups are the string values of every configured group claim.
	Groups []string
	// Method and Name are the JSON-RPC method and the tool or prompt name
	// or resource URI it targets; both empty at admission.
	Method string
	Name   string
}

// Condition is a boolean expression over Facts that the lists cannot say.
// An adapter compiles it (CEL in the policy file) and bounds its cost; an
// error means it could not be decided, and the policy then treats it as
// not satisfied (fail closed) and reports the error for the audit.
type Condition interface {
	Eval(ctx context.Context, f *Facts) (bool, error)
}

// The JSON-RPC methods of MCP that name what they act on.
const (
	MethodToolsCall          = "tools/call"
	MethodPromptsGet         = "prompts/get"
	MethodResourcesRead      = "resources/read"
	MethodResourcesSubscribe = "resources/subscribe"
	MethodToolsList          = "tools/list"
	MethodPromptsList        = "prompts/list"
	MethodResourcesList      = "resources/list"
)

// Kind is what a request names: a tool, a prompt, a resource, or nothing
// the policy can name (initialize, ping, notifications, lists...).
type Kind uint8

// The kinds of request.
const (
	KindOther Kind = iota
	KindTool
	KindPrompt
	KindResource
)

// KindOf tells what a JSON-RPC method names. resources/subscribe counts as
// reading the resource: a subscription delivers its updates.
func KindOf(method string) Kind {
	switch method {
	case MethodToolsCall:
		return KindTool
	case MethodPromptsGet:
		return KindPrompt
	case MethodResourcesRead, MethodResourcesSubscribe:
		return KindResource
	}
	return KindOther
}

// ListedKind tells what the entries of a list method's answer are, so the
// gateway can filter them with MayCall; KindOther for any other method.
func ListedKind(method string) Kind {
	switch method {
	case MethodToolsList:
		return KindTool
	case MethodPromptsList:
		return KindPrompt
	case MethodResourcesList:
		return KindResource
	}
	return KindOther
}

// callMethod is the method that uses an entry of kind k.
func (k Kind) callMethod() string {
	switch k {
	case KindTool:
		return MethodToolsCall
	case KindPrompt:
		return MethodPromptsGet
	case KindResource:
		return MethodResourcesRead
	}
	return ""
}

// String names the kind as the policy file does.
func (k Kind) String() string {
	switch k {
	case KindTool:
		return "tool"
	case KindPrompt:
		return "prompt"
	case KindResource:
		return "resource"
	}
	return "other"
}

// Call is one JSON-RPC request as the gateway read it.
type Call struct {
	Method string
	// Name is params.name for tools/call and prompts/get, params.uri for
	// resources/read and resources/subscribe, "" otherwise.
	Name string
}
