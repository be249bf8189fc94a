package policyfile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// DefaultCostLimit bounds the work of one condition evaluation, in CEL's
// cost units (about one per operation): a comprehension over a few hundred
// groups costs a few thousand, a quadratic one over a list an attacker could
// make long is stopped here.
const DefaultCostLimit = 100_000

// maxExpressionLen bounds a condition's source, in code points.
const maxExpressionLen = 4096

// interruptEvery is how many comprehension iterations run between checks of
// the request's context.
const interruptEvery = 100

// The variables of a condition. Admission conditions see the caller; rule
// conditions also see the request and the token's scopes.
const (
	varClaims        = "claims"
	varSub           = "sub"
	varEmail         = "email"
	varEmailVerified = "email_verified"
	varGroups        = "groups"
	varClientID      = "client_id"
	varMachine       = "machine"
	varScopes        = "scopes"
	varMethod        = "method"
	varName          = "name"
)

func newEnv(forRules bool) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.Variable(varClaims, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varSub, cel.StringType),
		cel.Variable(varEmail, cel.StringType),
		cel.Variable(varEmailVerified, cel.BoolType),
		cel.Variable(varGroups, cel.ListType(cel.StringType)),
		cel.Variable(varClientID, cel.StringType),
		cel.Variable(varMachine, cel.BoolType),
		ext.Strings(),
		// claims.?department.orValue("") reads a claim that may be absent.
		cel.OptionalTypes(),
		cel.ParserExpressionSizeLimit(maxExpressionLen),
	}
	if forRules {
		opts = append(opts,
			cel.Variable(varScopes, cel.ListType(cel.StringType)),
			cel.Variable(varMethod, cel.StringType),
			cel.Variable(varName, cel.StringType),
		)
	}
	return cel.NewEnv(opts...)
}

// envs are built once: building an environment costs milliseconds.
var envs = sync.OnceValues(func() ([2]*cel.Env, error) {
	admission, err := newEnv(false)
	if err != nil {
		return [2]*cel.Env{}, err
	}
	rules, err := newEnv(true)
	return [2]*cel.Env{admission, rules}, err
})

// condition is a compiled CEL expression; it implements policy.Condition.
type condition struct {
	where     string // its place in the file, for errors
	program   cel.Program
	costLimit uint64
}

var _ policy.Condition = (*condition)(nil)

// compile parses and type-checks src; the result must be a bool.
func compile(where, src string, forRules bool, costLimit uint64) (*condition, error) {
	e, err := envs()
	if err != nil {
		return nil, fmt.Errorf("%s: build the CEL environment: %w", where, err)
	}
	env := e[0]
	if forRules {
		env = e[1]
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s: %s", where, indent(iss.Err().Error()))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("%s: the expression gives %s, not bool (compare a claim explicitly, as in claims.admin == true)", where, t)
	}
	prg, err := env.Program(ast,
		cel.CostLimit(costLimit),
		cel.InterruptCheckFrequency(interruptEvery),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return &condition{where: where, program: prg, costLimit: costLimit}, nil
}

// ErrCostLimit is wrapped by the error of a condition whose evaluation was
// stopped for exceeding the cost limit.
var ErrCostLimit = errors.New("evaluation cost limit exceeded")

// Eval implements policy.Condition.
func (c *condition) Eval(ctx context.Context, f *policy.Facts) (bool, error) {
	out, _, err := c.program.ContextEval(ctx, activation{f})
	if err != nil {
		var cancelled interpreter.EvalCancelledError
		if errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded {
			return false, fmt.Errorf("policyfile: %s: %w (limit %d)", c.where, ErrCostLimit, c.costLimit)
		}
		return false, fmt.Errorf("policyfile: %s: %w", c.where, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("policyfile: %s: the expression gave %s, not bool", c.where, out.Type())
	}
	return b, nil
}

var (
	noClaims = map[string]any{}
	noList   = []string{}
)

// activation resolves a condition's variables from the facts on demand, so
// an expression pays only for the variables it reads.
type activation struct{ f *policy.Facts }

// ResolveName implements interpreter.Activation.
func (a activation) ResolveName(name string) (any, bool) {
	in := a.f.Input
	switch name {
	case varClaims:
		if in.Claims == nil {
			return noClaims, true
		}
		return in.Claims, true
	case varSub:
		return in.Subject, true
	case varEmail:
		// Only a verified address is visible: a condition such as
		// email.endsWith("@example.com") must not admit an address
		// anyone could type.
		if in.EmailTrusted() {
			return in.Email, true
		}
		return "", true
	case varEmailVerified:
		return in.EmailTrusted(), true
	case varGroups:
		if a.f.Groups == nil {
			return noList, true
		}
		return a.f.Groups, true
	case varClientID:
		return in.ClientID, true
	case varMachine:
		return in.Machine, true
	case varScopes:
		if in.Scopes == nil {
			return noList, true
		}
		return in.Scopes, true
	case varMethod:
		return a.f.Method, true
	case varName:
		return a.f.Name, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (activation) Parent() interpreter.Activation { return nil }

// indent keeps CEL's multi-line messages (the caret under the error)
// readable inside a list of problems.
func indent(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}
