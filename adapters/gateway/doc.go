// Package gateway puts an MCP server behind oidcproxy's access tokens. It is
// an http.Handler mounted at MCP_PATH that
//
//  1. refuses requests from browser origins outside an allow-list (the
//     DNS-rebinding defence of the MCP Streamable HTTP transport),
//  2. checks the bearer token with the VerifyAccessToken use case and answers
//     failures with RFC 6750 challenges that point at the RFC 9728 metadata
//     (401 invalid_token, 403 insufficient_scope for MCP step-up), then
//     refuses a subject beyond its rate limit with 429 (SubjectLimit,
//     ratelimit.go),
//  3. receives the request body whole, within MaxBodyBytes and BodyTimeout
//     (body.go says why),
//  4. reads the JSON-RPC message in it, compares it with the Mcp-Method and
//     Mcp-Name headers of MCP 2026-07-28, and asks the access policy whether
//     this caller may make this request (policy.go, jsonrpc.go): 403 with an
//     insufficient_scope challenge or a JSON-RPC error when not, and
//  5. sends the request to the MCP backend with net/http/httputil's
//     ReverseProxy: the client's Authorization and Cookie headers and any
//     client-sent identity headers are removed, the verified identity is
//     added in configured headers, and responses (JSON or Server-Sent
//     Events) are flushed to the client as they arrive. Idle connections to
//     the backend are closed before the backend would close them
//     (BackendIdleTimeout). The answer to a list request loses the entries
//     the caller may not call (filter.go, sse.go).
//
// Apart from the rate limiter's counters, the gateway keeps no state of its
// own between requests and caches nothing: a cache of verified tokens
// belongs to the token adapter, next to the revocation it must respect.
package gateway
