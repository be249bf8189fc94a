package domain

import (
	"net/url"
	"strings"
)

// CanonicalResource normalises an RFC 8707 resource indicator for
// comparison: absolute, no fragment, lower-case scheme and host, no trailing
// slash (the MCP specification's canonical server URI).
func CanonicalResource(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", ErrInvalidTarget("resource must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", ErrInvalidTarget("resource must not contain a fragment")
	}
	if u.User != nil {
		return "", ErrInvalidTarget("resource must not contain user information")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// CheckResource resolves the RFC 8707 resource indicators of a request
// against the one resource want that the proxy serves (its MCP server,
// already canonical): none means that one; otherwise every indicator must
// name it, since the proxy issues tokens for a single audience. It returns
// want, or invalid_target.
func CheckResource(want string, values []string) (string, error) {
	for _, v := range values {
		c, err := CanonicalResource(v)
		if err != nil {
			return "", err
		}
		if c != want {
			return "", ErrInvalidTarget("resource is not served by this authorization server")
		}
	}
	return want, nil
}
