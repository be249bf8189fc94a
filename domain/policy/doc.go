// Package policy is oidcproxy's access policy: who may sign in (admission)
// and which MCP requests a caller may make (authorization), with their plain
// evaluation.
//
// A Policy is built once, by New, from a Spec; New checks every entry and
// reports every problem at once, and precompiles what evaluation needs (sets,
// globs, an index of rules per kind of request), so that deciding a request
// is a few map lookups and string comparisons with no allocation.
//
// Expressions over claims (CEL in the policy file) are compiled and
// evaluated outside the domain: this package sees them only as a Condition,
// so it depends on the standard library and the domain alone.
//
// Where each part takes effect: admission is decided after the upstream
// login and again at every refresh, by the use cases; authorization is
// decided by the gateway for every JSON-RPC request, and for every entry of
// a list answer it filters.
package policy
