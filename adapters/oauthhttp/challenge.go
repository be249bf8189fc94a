package oauthhttp

import (
	"strings"

	"github.com/oidcproxy/oidcproxy/domain"
)

// BasicChallenge is the WWW-Authenticate value of a 401 invalid_client
// answer to a client that authenticated with HTTP Basic (RFC 6749 5.2,
// RFC 7617).
const BasicChallenge = `Basic realm="oidcproxy", charset="UTF-8"`

// BearerChallenge builds the RFC 6750 3 WWW-Authenticate values of one
// protected resource. Its constant parameters are quoted once, at
// construction, so that answering a request only concatenates strings.
type BearerChallenge struct {
	noToken string // Bearer resource_metadata="…", scope="…"
	tail    string // , scope="…", resource_metadata="…" (after error_description)
}

// NewBearerChallenge prepares the challenges of a resource whose RFC 9728
// metadata document is at resourceMetadataURL (RFC 9728 5.1) and whose
// tokens must carry scopes. The scope parameter is included whenever scopes
// are required: the MCP authorization specification asks for it in 401 and
// 403 challenges so that clients request, or step up to, the right scopes.
func NewBearerChallenge(resourceMetadataURL string, scopes []string) BearerChallenge {
	metadata := Quote(resourceMetadataURL)
	c := BearerChallenge{
		noToken: "Bearer resource_metadata=" + metadata,
		tail:    ", resource_metadata=" + metadata,
	}
	if len(scopes) > 0 {
		scope := Quote(strings.Join(scopes, " "))
		c.noToken += ", scope=" + scope
		c.tail = ", scope=" + scope + c.tail
	}
	return c
}

// NoToken is the challenge to a request without credentials: RFC 6750 3
// gives it no error code.
func (c BearerChallenge) NoToken() string { return c.noToken }

// Error is the challenge to a request whose token was refused with code;
// description, when not empty, becomes error_description.
func (c BearerChallenge) Error(code domain.ErrorCode, description string) string {
	var b strings.Builder
	b.Grow(64 + len(description) + len(c.tail))
	b.WriteString(`Bearer error="`)
	b.WriteString(string(code))
	b.WriteByte('"')
	if description != "" {
		b.WriteString(", error_description=")
		b.WriteString(Quote(description))
	}
	b.WriteString(c.tail)
	return b.String()
}

// Quote renders s as an RFC 7230 quoted-string, the form of auth-param
// values (RFC 7235 2.1): '"' and '\' are escaped, and control characters,
// which a quoted-string cannot hold, become spaces.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' && c != '\t' || c == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
