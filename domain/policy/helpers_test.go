package policy_test

import (
	"context"
	"testing"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// condFunc is a Condition written in Go. The policy file's conditions are
// CEL, compiled by the policyfile adapter and tested there; here a plain
// function shows what the domain does with a condition's answer.
type condFunc func(ctx context.Context, f *policy.Facts) (bool, error)

func (c condFunc) Eval(ctx context.Context, f *policy.Facts) (bool, error) { return c(ctx, f) }

func always(v bool) policy.Condition {
	return condFunc(func(context.Context, *policy.Facts) (bool, error) { return v, nil })
}

func mustClaim(t testing.TB, s string) policy.ClaimPath {
	t.Helper()
	c, err := policy.ParseClaimPath(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustNew(t testing.TB, spec policy.Spec) *policy.Policy {
	t.Helper()
	p, err := policy.New(spec)
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	return p
}
