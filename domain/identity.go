package domain

import (
	"errors"
	"fmt"
	"net/mail"
)

// Identity is who the upstream IdP says the user is, taken from a verified
// ID token.
type Identity struct {
	Subject       string
	Issuer        string
	Email         string
	EmailVerified bool
	Name          string
	// Claims holds the remaining verified ID-token claims worth keeping
	// (for identity headers and introspection); bounded by the provider.
	Claims map[string]any
}

// Bounds on the claims oidcproxy keeps of an upstream identity.
const (
	// MaxSubjectLength is OpenID Connect Core 2's bound on sub: it "MUST
	// NOT exceed 255 ASCII characters in length".
	MaxSubjectLength = 255
	// MaxEmailLength is the longest usable address: a path of RFC 5321
	// 4.5.3.1.3 holds at most 256 octets including its angle brackets.
	MaxEmailLength = 254
	// MaxNameLength bounds the display name, in bytes: room for a long
	// name in a script of three-byte characters, while keeping a hostile
	// one out of the store and the consent page.
	MaxNameLength = 512
)

// ClaimError is an upstream identity claim oidcproxy cannot use. Its text
// names the claim and the rule it breaks, never the claim's value: the
// value is attacker-controlled (anyone who can edit their profile at the
// IdP) and may be personal data, so it must not reach the logs.
type ClaimError struct {
	Claim  string // the ID-token claim name: sub, email, name
	Reason string
}

// Error implements error.
func (e *ClaimError) Error() string {
	return fmt.Sprintf("upstream claim %s %s", e.Claim, e.Reason)
}

// Validate applies the rules every upstream identity must meet before a
// grant is made from it. The subject becomes a header value at the gateway
// (X-Forwarded-User), a log attribute and a store key, so it must be
// 1 to 255 bytes of printable ASCII (space included, but not at either
// end, where HTTP would trim it). The email, when present, must be a bare
// RFC 5322 address (no display name, comment or quoting that parsing would
// rewrite) of at most 254 bytes; internationalised local parts (RFC 6532)
// are accepted. The name, when present, is free text in any script of at
// most MaxNameLength bytes, without control characters (see IsSafeText).
// The error is a *ClaimError naming the first claim that fails.
func (i Identity) Validate() error {
	switch {
	case i.Subject == "":
		return &ClaimError{Claim: "sub", Reason: "is empty"}
	case len(i.Subject) > MaxSubjectLength:
		return &ClaimError{Claim: "sub", Reason: fmt.Sprintf("is longer than %d bytes", MaxSubjectLength)}
	case !printableASCII(i.Subject):
		return &ClaimError{Claim: "sub", Reason: "contains characters other than printable ASCII"}
	case i.Subject[0] == ' ' || i.Subject[len(i.Subject)-1] == ' ':
		return &ClaimError{Claim: "sub", Reason: "starts or ends with a space"}
	}
	if i.Email != "" {
		if len(i.Email) > MaxEmailLength {
			return &ClaimError{Claim: "email", Reason: fmt.Sprintf("is longer than %d bytes", MaxEmailLength)}
		}
		if err := checkEmail(i.Email); err != nil {
			return &ClaimError{Claim: "email", Reason: err.Error()}
		}
	}
	switch {
	case len(i.Name) > MaxNameLength:
		return &ClaimError{Claim: "name", Reason: fmt.Sprintf("is longer than %d bytes", MaxNameLength)}
	case !IsSafeText(i.Name):
		return &ClaimError{Claim: "name", Reason: "contains control characters or is not UTF-8"}
	}
	return nil
}

// checkEmail accepts a bare addr-spec, byte for byte as parsed.
func checkEmail(email string) error {
	if !IsSafeText(email) {
		return errors.New("contains control characters or is not UTF-8")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		return errors.New("is not a plain email address")
	}
	return nil
}

// printableASCII reports whether s holds only the bytes 0x20 to 0x7e.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
