package domain

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// MaxClientIDURLLength bounds a client_id URL (Client ID Metadata Documents).
// Real ones are short; the bound keeps a hostile client_id out of our cache
// keys, logs and transactions.
const MaxClientIDURLLength = 2048

// IsClientIDURL reports whether a client_id names a client metadata document
// (draft-ietf-oauth-client-id-metadata-document) rather than a client we
// registered. Our own ids are base64url and never contain a colon, so any
// colon means "this is meant as a URL": it is then judged by
// ValidateClientIDURL, which refuses everything but well-formed https URLs,
// instead of being looked up (and not found) in the store.
func IsClientIDURL(clientID string) bool {
	return strings.Contains(clientID, ":")
}

// ValidateClientIDURL applies the rules of a client identifier URL: the
// https scheme exactly as written (the id is compared byte for byte, never
// normalised), a host, a path naming the document, no user information, no
// fragment, no dot-segments and no IP literal unless allowIPLiteral (a
// private-network allowance for development and tests; the fetcher still
// checks the addresses it connects to). It returns the parsed URL, or an
// error whose text is safe to show.
func ValidateClientIDURL(raw string, allowIPLiteral bool) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("client_id URL is empty")
	}
	if len(raw) > MaxClientIDURLLength {
		return nil, fmt.Errorf("client_id URL is longer than %d bytes", MaxClientIDURLLength)
	}
	// Only the exact lower-case prefix: "HTTPS://" would parse, but the
	// document's client_id must equal the URL byte for byte, and a scheme
	// spelled two ways invites two cache entries for one client.
	if !strings.HasPrefix(raw, "https://") {
		return nil, fmt.Errorf("client_id URL must use the https scheme")
	}
	for _, r := range raw {
		if r <= 0x20 || r >= 0x7f || strings.ContainsRune("\"<>\\^`{|}", r) {
			return nil, fmt.Errorf("client_id URL contains a forbidden character")
		}
	}
	if strings.Contains(raw, "#") {
		return nil, fmt.Errorf("client_id URL must not contain a fragment")
	}
	authority, _, _ := strings.Cut(strings.TrimPrefix(raw, "https://"), "/")
	authority, _, _ = strings.Cut(authority, "?")
	if strings.Contains(authority, "%") {
		// A percent-encoded host would be fetched under another spelling
		// than the one the rules below judged.
		return nil, fmt.Errorf("client_id URL must not percent-encode its host")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return nil, fmt.Errorf("client_id URL is not a valid URL")
	}
	if u.User != nil {
		return nil, fmt.Errorf("client_id URL must not contain user information")
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("client_id URL must name a host")
	}
	if p := u.Port(); p != "" && !validPort(p) {
		return nil, fmt.Errorf("client_id URL has an invalid port")
	}
	if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("client_id URL has an invalid port")
	}
	if !allowIPLiteral && looksLikeIPLiteral(host) {
		return nil, fmt.Errorf("client_id URL must name a host, not an IP address")
	}
	path := u.EscapedPath()
	if strings.Trim(path, "/") == "" {
		return nil, fmt.Errorf("client_id URL must have a path naming the metadata document")
	}
	if hasDotSegment(path) {
		return nil, fmt.Errorf("client_id URL must not contain dot-segments")
	}
	return u, nil
}

// looksLikeIPLiteral reports hosts that address a machine by number: IPv4
// and IPv6 literals, and the shorthand forms some resolvers accept ("127.1",
// "2130706433", "0x7f.0.0.1"). No top-level domain is numeric, so a last
// label of digits (or hex with 0x) is never a DNS name.
func looksLikeIPLiteral(host string) bool {
	if net.ParseIP(host) != nil || strings.Contains(host, ":") {
		return true
	}
	h := strings.TrimSuffix(host, ".")
	last := h[strings.LastIndex(h, ".")+1:]
	if last == "" {
		return false
	}
	lower := strings.ToLower(last)
	if strings.HasPrefix(lower, "0x") {
		return true
	}
	for _, c := range last {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
