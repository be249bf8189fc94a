package policyfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// maxFileSize bounds the policy file; a real one is a few kilobytes.
const maxFileSize = 1 << 20

// Option adjusts loading.
type Option func(*options)

type options struct {
	costLimit uint64
}

// WithCostLimit sets the cost limit of each condition evaluation (CEL cost
// units); the default is DefaultCostLimit.
func WithCostLimit(limit uint64) Option {
	return func(o *options) {
		if limit > 0 {
			o.costLimit = limit
		}
	}
}

func collect(opts []Option) options {
	o := options{costLimit: DefaultCostLimit}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// InvalidError lists every problem of a policy file.
type InvalidError struct {
	Problems []error
}

// Error implements error, one problem a line.
func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid policy (%d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(strings.ReplaceAll(p.Error(), "\n", "\n    "))
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *InvalidError) Unwrap() []error { return e.Problems }

// Parse reads a policy file's content. Every problem is reported at once,
// as an *InvalidError.
func Parse(data []byte, opts ...Option) (*policy.Policy, Summary, error) {
	o := collect(opts)
	var f file
	problems := decode(data, &f)
	spec, specProblems := toSpec(&f, o)
	problems = append(problems, specProblems...)
	p, err := policy.New(spec)
	if err != nil {
		problems = append(problems, flatten(err)...)
	}
	if len(problems) > 0 {
		return nil, Summary{}, &InvalidError{Problems: problems}
	}
	return p, summarize(p), nil
}

// flatten lists the problems New joined, without its prefix.
func flatten(err error) []error {
	if j, ok := errors.Unwrap(err).(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// toSpec turns the decoded file into the domain's Spec, compiling the
// conditions. A condition that does not compile is replaced by one that is
// never true, so that New still checks the rest of the file; its problem is
// reported and no policy is built.
func toSpec(f *file, o options) (policy.Spec, []error) {
	var (
		spec     policy.Spec
		problems []error
	)
	cond := func(where, src string, forRules bool) policy.Condition {
		if strings.TrimSpace(src) == "" {
			return nil
		}
		c, err := compile(where, src, forRules, o.costLimit)
		if err != nil {
			problems = append(problems, err)
			return broken{}
		}
		return c
	}
	var errs []error
	spec.GroupClaims, errs = claimPaths(f.GroupClaims)
	problems = append(problems, errs...)
	if a := f.Admission; a != nil {
		spec.Admission = &policy.AdmissionSpec{
			Emails:         a.Allow.Emails,
			Domains:        a.Allow.Domains,
			Subjects:       a.Allow.Subjects,
			Groups:         a.Allow.Groups,
			MachineClients: a.Allow.MachineClients,
			Condition:      cond("admission.allow.condition", a.Allow.Condition, false),
			Require:        cond("admission.require", a.Require, false),
		}
	}
	if z := f.Authorization; z != nil {
		spec.Authorization = &policy.AuthorizationSpec{Default: policy.Default(z.Default)}
		for i, r := range z.Rules {
			spec.Authorization.Rules = append(spec.Authorization.Rules, policy.RuleSpec{
				Name:      r.Name,
				Methods:   r.Methods,
				Tools:     r.Tools,
				Prompts:   r.Prompts,
				Resources: r.Resources,
				Scopes:    r.Scopes,
				Groups:    r.Groups,
				Condition: cond(fmt.Sprintf("authorization.rules[%d].condition", i), r.Condition, true),
			})
		}
	}
	return spec, problems
}

// broken stands in for a condition that failed to compile while the rest
// of the file is checked; the policy it is part of is never used.
type broken struct{}

func (broken) Eval(context.Context, *policy.Facts) (bool, error) {
	return false, errors.New("policyfile: condition did not compile")
}

// ReadFile reads and parses the policy file at path.
func ReadFile(path string, opts ...Option) (*policy.Policy, Summary, error) {
	p, sum, err := readFile(path, opts)
	if err != nil {
		return nil, Summary{}, fmt.Errorf("policyfile: %w", err)
	}
	return p, sum, nil
}

func readFile(path string, opts []Option) (*policy.Policy, Summary, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, Summary{}, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, Summary{}, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, Summary{}, fmt.Errorf("%s is larger than %d bytes", path, maxFileSize)
	}
	p, sum, err := Parse(data, opts...)
	if err != nil {
		return nil, Summary{}, fmt.Errorf("%s: %w", path, err)
	}
	sum.Path = path
	return p, sum, nil
}
