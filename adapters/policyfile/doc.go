// Package policyfile reads oidcproxy's policy file (YAML, see
// docs/policy.md) into a domain policy: it decodes strictly (an unknown key
// is an error, not a silently ignored typo), compiles and type-checks every
// CEL condition at load time, bounds the cost of evaluating them, and
// reports every problem of a file at once.
//
// A Source holds the policy in force and replaces it on Reload only when
// the new file is valid, so a mistake made while editing the file never
// opens or closes the door by accident.
package policyfile
