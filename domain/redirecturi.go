package domain

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// maxRedirectURILength bounds a redirect URI; real ones are far shorter and
// a bound keeps hostile registrations from bloating the store.
const maxRedirectURILength = 2000

// forbiddenSchemes can execute or read local content in a browser or app and
// are never acceptable redirect targets, whatever the client type.
var forbiddenSchemes = map[string]bool{
	"javascript": true, "data": true, "file": true, "vbscript": true,
	"about": true, "blob": true, "filesystem": true, "view-source": true,
}

// ValidateRedirectURI applies the registration rules for one redirect URI of
// a client of the given application type. The patterns, when non-empty,
// further restrict which URIs may be registered (see RedirectPattern).
func ValidateRedirectURI(raw string, appType ApplicationType, patterns []RedirectPattern) error {
	u, err := parseRedirectURI(raw)
	if err != nil {
		return ErrInvalidRedirectURI(err.Error())
	}
	scheme := u.Scheme
	loopback := scheme == "http" && IsLoopbackHost(u.Hostname())
	switch appType {
	case ApplicationWeb:
		if scheme != "https" {
			return ErrInvalidRedirectURI("web clients must use https redirect URIs")
		}
		if IsLoopbackHost(u.Hostname()) {
			return ErrInvalidRedirectURI("web clients may not redirect to a loopback host")
		}
	case ApplicationNative:
		switch {
		case scheme == "https":
		case scheme == "http":
			if !loopback {
				return ErrInvalidRedirectURI("http redirect URIs are allowed on loopback hosts only")
			}
		default:
			// A private-use URI scheme (RFC 8252 7.1), e.g. cursor:// or
			// com.example.app:/callback. parseRedirectURI already refused the
			// dangerous ones.
		}
	default:
		return ErrInvalidClientMetadata(fmt.Sprintf("unsupported application_type %q", appType))
	}
	if len(patterns) > 0 {
		matched := false
		for _, p := range patterns {
			if p.Match(u) {
				matched = true
				break
			}
		}
		if !matched {
			return ErrInvalidRedirectURI("redirect URI is not allowed by this server's policy")
		}
	}
	return nil
}

// parseRedirectURI parses and applies the rules common to every client type.
func parseRedirectURI(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("redirect URI is empty")
	}
	if len(raw) > maxRedirectURILength {
		return nil, fmt.Errorf("redirect URI is longer than %d bytes", maxRedirectURILength)
	}
	for _, r := range raw {
		if r <= 0x20 || r >= 0x7f || strings.ContainsRune("\"<>\\^`{|}", r) {
			return nil, fmt.Errorf("redirect URI contains a forbidden character")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("redirect URI is not a valid URI")
	}
	if !u.IsAbs() {
		return nil, fmt.Errorf("redirect URI must be absolute")
	}
	scheme := u.Scheme // url.Parse lower-cases it; the raw form must match
	if rawScheme, _, _ := strings.Cut(raw, ":"); rawScheme != scheme {
		return nil, fmt.Errorf("redirect URI scheme must be lower case")
	}
	if forbiddenSchemes[scheme] {
		return nil, fmt.Errorf("redirect URI scheme %q is not allowed", scheme)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, fmt.Errorf("redirect URI must not contain a fragment")
	}
	if u.User != nil {
		return nil, fmt.Errorf("redirect URI must not contain user information")
	}
	if hasDotSegment(u.EscapedPath()) || hasDotSegment(u.Opaque) {
		return nil, fmt.Errorf("redirect URI must not contain dot-segments")
	}
	if scheme == "http" || scheme == "https" {
		if u.Host == "" || u.Hostname() == "" {
			return nil, fmt.Errorf("redirect URI must name a host")
		}
		if u.Opaque != "" {
			return nil, fmt.Errorf("redirect URI is not a valid URI")
		}
		if p := u.Port(); p != "" && !validPort(p) {
			return nil, fmt.Errorf("redirect URI has an invalid port")
		}
	} else if u.Host == "" && u.Opaque == "" && u.Path == "" {
		return nil, fmt.Errorf("redirect URI has nothing after its scheme")
	}
	return u, nil
}

// hasDotSegment reports "." or ".." path segments, also percent-encoded, which
// browsers and servers normalise differently and which let an attacker walk
// out of a registered path.
func hasDotSegment(p string) bool {
	if p == "" {
		return false
	}
	lower := strings.ToLower(p)
	lower = strings.ReplaceAll(lower, "%2e", ".")
	for _, seg := range strings.FieldsFunc(lower, func(r rune) bool { return r == '/' }) {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c")
}

func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n > 0 && n <= 65535
}

// IsLoopbackHost reports whether host (without port) is a loopback address
// or the name localhost.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// MatchRedirectURI reports whether the redirect URI presented at /authorize
// is one the client registered. The comparison is exact (RFC 9700 2.1),
// except that the port of an http loopback URI may differ, because native
// apps listen on an ephemeral port (RFC 8252 7.3).
func MatchRedirectURI(registered []string, presented string) bool {
	for _, r := range registered {
		if r == presented {
			return true
		}
	}
	pu, err := url.Parse(presented)
	if err != nil || pu.Scheme != "http" || !IsLoopbackHost(pu.Hostname()) {
		return false
	}
	if _, err := parseRedirectURI(presented); err != nil {
		return false
	}
	for _, r := range registered {
		ru, err := url.Parse(r)
		if err != nil || ru.Scheme != "http" || !IsLoopbackHost(ru.Hostname()) {
			continue
		}
		if ru.Hostname() == pu.Hostname() && ru.EscapedPath() == pu.EscapedPath() &&
			ru.RawQuery == pu.RawQuery {
			return true
		}
	}
	return false
}

// RedirectPattern is one entry of the operator's allow-list of client
// redirect URIs (OIDC_PROXY_ALLOWED_CLIENT_REDIRECT_URIS). Forms:
//
//	http://localhost:*            any port
//	https://*.example.com/cb      any subdomain of example.com (not the apex)
//	https://app.example.com/oauth/*   path glob ("*" spans any characters)
//	cursor://*                    any URI with that private-use scheme
type RedirectPattern struct {
	raw       string
	scheme    string
	host      string // exact host, or ".example.com" for a "*." wildcard
	anyHost   bool
	port      string // "" (none), "*", or digits
	pathGlob  string // "" matches only "" or "/"; "*" alone matches anything
	rest      string // for non-hierarchical schemes: glob over what follows "scheme:"
	hierarchy bool
}

// ParseRedirectPattern parses one allow-list entry.
func ParseRedirectPattern(raw string) (RedirectPattern, error) {
	p := RedirectPattern{raw: raw}
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" {
		return p, fmt.Errorf("redirect pattern %q: missing scheme", raw)
	}
	p.scheme = strings.ToLower(scheme)
	if forbiddenSchemes[p.scheme] {
		return p, fmt.Errorf("redirect pattern %q: scheme %q is never allowed", raw, p.scheme)
	}
	if !strings.HasPrefix(rest, "//") {
		p.rest = rest
		return p, nil
	}
	p.hierarchy = true
	rest = rest[2:]
	if rest == "*" {
		// "scheme://*": anything with this scheme.
		p.hierarchy = false
		p.rest = "*"
		return p, nil
	}
	authority, pth, hasPath := strings.Cut(rest, "/")
	if hasPath {
		p.pathGlob = "/" + pth
	}
	if strings.Contains(authority, "@") {
		return p, fmt.Errorf("redirect pattern %q: user information is not allowed", raw)
	}
	host, port := authority, ""
	if i := strings.LastIndex(authority, ":"); i >= 0 && !strings.HasSuffix(authority, "]") {
		host, port = authority[:i], authority[i+1:]
		if port != "*" && !validPort(port) {
			return p, fmt.Errorf("redirect pattern %q: invalid port", raw)
		}
	}
	host = strings.ToLower(host)
	switch {
	case host == "*":
		p.anyHost = true
	case strings.HasPrefix(host, "*."):
		p.host = host[1:]
		if strings.Contains(p.host[1:], "*") || len(p.host) < 2 {
			return p, fmt.Errorf("redirect pattern %q: only a leading \"*.\" is allowed in the host", raw)
		}
	case strings.Contains(host, "*"):
		return p, fmt.Errorf("redirect pattern %q: only a leading \"*.\" is allowed in the host", raw)
	case host == "":
		return p, fmt.Errorf("redirect pattern %q: missing host", raw)
	default:
		p.host = host
	}
	p.port = port
	return p, nil
}

// String returns the pattern as configured.
func (p RedirectPattern) String() string { return p.raw }

// Match reports whether u (already validated by parseRedirectURI) matches.
func (p RedirectPattern) Match(u *url.URL) bool {
	if u.Scheme != p.scheme {
		return false
	}
	if !p.hierarchy {
		rest := strings.TrimPrefix(u.String(), u.Scheme+":")
		return globMatch(p.rest, rest)
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case p.anyHost:
	case strings.HasPrefix(p.host, "."):
		if !strings.HasSuffix(host, p.host) || len(host) == len(p.host) {
			return false
		}
	default:
		if host != strings.Trim(p.host, "[]") && "["+host+"]" != p.host {
			return false
		}
	}
	switch p.port {
	case "*":
	default:
		if u.Port() != p.port {
			return false
		}
	}
	upath := u.EscapedPath()
	if p.pathGlob == "" {
		return (upath == "" || upath == "/") && u.RawQuery == ""
	}
	target := upath
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	return globMatch(p.pathGlob, target)
}

// globMatch matches s against a glob where "*" spans any run of characters,
// including "/": operators write "https://host/oauth/*" meaning everything
// below /oauth/.
func globMatch(pattern, s string) bool {
	if pattern == "*" {
		return true
	}
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
