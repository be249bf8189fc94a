// Package oauthhttp is the OAuth wire format that the HTTP adapters share:
// the one table from OAuth error code to HTTP status, the JSON error
// document and the no-store JSON writer, the WWW-Authenticate challenges
// (RFC 6750 bearer challenges pointing at the RFC 9728 metadata, the
// client-authentication Basic challenge), the shape of an audit record,
// and the RFC 7591 client metadata that /register and Client ID Metadata
// Documents both carry.
//
// The authorization server (adapters/httpapi), the gateway
// (adapters/gateway) and the metadata-document fetcher (adapters/cimd) must
// not import each other; each of them imports this package instead, so that
// a rule of the wire format is written once. It imports only the domain,
// the ports and the standard library.
package oauthhttp
