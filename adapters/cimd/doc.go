// Package cimd fetches OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document, the client registration
// the MCP authorization specification prefers): when a client_id is an https
// URL, the document at that URL is the client's metadata.
//
// The URL is chosen by whoever starts an authorization, so every fetch is a
// request an attacker aimed. The Fetcher therefore
//   - connects only to public unicast addresses, checked in the dialer after
//     DNS resolution (a name that resolves, or re-resolves, to 127.0.0.1 or
//     to a cloud metadata address is refused at connect time), unless the
//     private-network allowance of development and tests is on;
//   - speaks https only, ignores proxy settings from the environment, and
//     never follows a redirect;
//   - accepts only a 200 answer with a JSON content type, of at most 5 KiB
//     (the draft's recommended cap), within a short timeout;
//   - caches documents in a bounded memory cache for their max-age, clamped
//     between a floor and a ceiling, remembers failures briefly, and shares
//     one fetch among concurrent requests for the same URL, so a hostile
//     client_id cannot make the proxy fetch in a loop;
//   - bounds what distinct URLs (a new query string is a new URL) can
//     cost: a few fetches in flight in all and two per host, a per-host
//     rate (a burst, then one a second), and a host that failed is left
//     alone for a while whatever the URL. A fetch beyond the limits is
//     refused at once with temporarily_unavailable, never queued, and the
//     refusal is not cached;
//   - lets its caller refuse the requests that would start a fetch
//     (Options.AdmitFetch), which the proxy uses to limit them per client
//     address.
//
// Errors name the URL's host and the reason, never the document's body.
package cimd
