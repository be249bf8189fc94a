package policyfile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
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
//
// Every evaluation is bounded by costLimit. Tracking the cost as the
// expression runs costs several times the evaluation itself, so when the
// checker can prove a bound under the limit for inputs of bounded size
// (inputBounds), the condition also keeps a program without the tracker and
// runs it for the inputs that are within those bounds: its cost is then
// below the limit without counting. Any other input, and any expression
// whose bound is over the limit or unknown (most that read claims), runs
// with the tracker and is stopped at the limit.
type condition struct {
	where     string // its place in the file, for errors
	costLimit uint64
	// tracked stops at costLimit; it runs whenever bounded cannot.
	tracked cel.Program
	// bounded has no cost tracker; nil when the checker's bound is over
	// costLimit. It runs only for facts within inputBounds for every
	// variable in sized.
	bounded cel.Program
	sized   varSet
	// interruptible marks an expression with a comprehension, the only
	// place where CEL checks for cancellation: it is evaluated under the
	// request's context. Any other expression runs a fixed number of steps
	// and is evaluated without one, which spares a context per evaluation.
	interruptible bool
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
	c := &condition{where: where, costLimit: costLimit}
	sized, interruptible, counted := inspect(ast)
	c.sized, c.interruptible = sized, interruptible
	c.tracked, err = env.Program(ast,
		cel.CostLimit(costLimit),
		cel.InterruptCheckFrequency(interruptEvery),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if est, err := env.EstimateCost(ast, inputBounds{}); counted && err == nil && est.Max <= costLimit {
		c.bounded, err = env.Program(ast,
			cel.InterruptCheckFrequency(interruptEvery),
			cel.EvalOptions(cel.OptOptimize),
		)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	return c, nil
}

// ErrCostLimit is wrapped by the error of a condition whose evaluation was
// stopped for exceeding the cost limit.
var ErrCostLimit = errors.New("evaluation cost limit exceeded")

// Eval implements policy.Condition.
func (c *condition) Eval(ctx context.Context, f *policy.Facts) (bool, error) {
	prg := c.tracked
	if c.bounded != nil && c.sized.within(f) {
		prg = c.bounded
	}
	var (
		out ref.Val
		err error
	)
	if c.interruptible {
		out, _, err = prg.ContextEval(ctx, activation{f})
	} else {
		out, _, err = prg.Eval(activation{f})
	}
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

// The sizes inputBounds assumes of the variables. They are far above what
// an identity and a request carry, so that the bounded program is the one
// that runs; an input beyond them is evaluated with the cost tracker.
const (
	// maxBoundedString bounds sub, email, client_id, method and name, in
	// bytes (CEL counts code points, never more than bytes).
	maxBoundedString = 2048
	// maxBoundedList bounds the number of groups and of scopes, and
	// maxBoundedItem the length of each, in bytes.
	maxBoundedList = 256
	maxBoundedItem = 512
)

// varSet is a set of the variables whose sizes inputBounds bounds.
type varSet uint8

const (
	sizedSub varSet = 1 << iota
	sizedEmail
	sizedClientID
	sizedMethod
	sizedName
	sizedGroups
	sizedScopes
)

// sizedVars maps each variable inputBounds bounds to its bit.
var sizedVars = map[string]varSet{
	varSub: sizedSub, varEmail: sizedEmail, varClientID: sizedClientID,
	varMethod: sizedMethod, varName: sizedName, varGroups: sizedGroups, varScopes: sizedScopes,
}

// within reports whether every variable of s has, in f, a size within
// inputBounds.
func (s varSet) within(f *policy.Facts) bool {
	in := f.Input
	strs := [...]struct {
		bit varSet
		v   string
	}{
		{sizedSub, in.Subject}, {sizedEmail, in.Email}, {sizedClientID, in.ClientID},
		{sizedMethod, f.Method}, {sizedName, f.Name},
	}
	for _, e := range strs {
		if s&e.bit != 0 && len(e.v) > maxBoundedString {
			return false
		}
	}
	return (s&sizedGroups == 0 || listWithin(f.Groups)) && (s&sizedScopes == 0 || listWithin(in.Scopes))
}

func listWithin(l []string) bool {
	if len(l) > maxBoundedList {
		return false
	}
	for _, v := range l {
		if len(v) > maxBoundedItem {
			return false
		}
	}
	return true
}

// inspect returns the bounded variables an expression names, whether it
// has a comprehension, and whether its cost may be left to the checker's
// estimate (counted): every function it calls is one whose cost the
// checker bounds (countedCalls), and no value of unbounded size can pass
// for a bounded variable.
//
// The estimator (inputBounds) knows a value by its path, a variable's name
// followed by the fields selected from it, and a selection from a value
// without a path of its own (a conditional, orValue, a map literal) has
// the field's name alone as its path: claims.?org.orValue({}).groups
// would be estimated as the groups variable, though its value is any
// claim's. So would an iteration or accumulator variable named as a
// bounded one. An expression with such a field, index key or variable is
// always tracked; has() only tests presence, which costs the same whatever
// the size.
func inspect(a *cel.Ast) (sized varSet, comprehension, counted bool) {
	counted = true
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.IdentKind:
			sized |= sizedVars[e.AsIdent()]
		case celast.SelectKind:
			if sel := e.AsSelect(); !sel.IsTestOnly() && sizedVars[sel.FieldName()] != 0 {
				counted = false
			}
		case celast.ComprehensionKind:
			comprehension = true
			c := e.AsComprehension()
			if sizedVars[c.IterVar()] != 0 || sizedVars[c.IterVar2()] != 0 || sizedVars[c.AccuVar()] != 0 {
				counted = false
			}
		case celast.CallKind:
			call := e.AsCall()
			counted = counted && countedCalls[call.FunctionName()]
			for _, arg := range call.Args() {
				if arg.Kind() == celast.LiteralKind {
					if key, ok := arg.AsLiteral().Value().(string); ok && sizedVars[key] != 0 {
						counted = false // m["groups"], m[?"groups"], m.?groups
					}
				}
			}
		}
	}))
	return sized, comprehension, counted
}

// countedCalls are the functions whose cost the checker's estimate and
// the run-time tracker compute alike, by the same formula over the sizes
// of the arguments: CEL's operators and its core string functions. The
// string extensions (lowerAscii, split, join...) are left out: the
// checker underestimates some of them (join, by the length of what it
// builds), so an expression that calls one is always tracked.
var countedCalls = map[string]bool{
	operators.LogicalAnd: true, operators.LogicalOr: true, operators.LogicalNot: true,
	operators.NotStrictlyFalse: true, operators.Conditional: true,
	operators.Equals: true, operators.NotEquals: true,
	operators.Less: true, operators.LessEquals: true, operators.Greater: true, operators.GreaterEquals: true,
	operators.Add: true, operators.Subtract: true, operators.Multiply: true, operators.Divide: true,
	operators.Modulo: true, operators.Negate: true,
	operators.Index: true, operators.OptIndex: true, operators.OptSelect: true, operators.In: true,
	overloads.Size: true, overloads.StartsWith: true, overloads.EndsWith: true,
	overloads.Contains: true, overloads.Matches: true,
	"orValue": true, "hasValue": true, "value": true, "or": true,
	"optional.of": true, "optional.none": true, "optional.ofNonZeroValue": true,
}

// inputBounds is the checker's estimator of the variables' sizes: the
// bounds above for the variables they name, nothing for claims (whose
// values are of any type and size), and CEL's own costs for every call.
type inputBounds struct{}

// EstimateSize implements checker.CostEstimator.
func (inputBounds) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	var limit uint64
	switch path := n.Path(); {
	case len(path) == 1 && sizedVars[path[0]]&(sizedGroups|sizedScopes) != 0:
		limit = maxBoundedList
	case len(path) == 1 && sizedVars[path[0]] != 0:
		limit = maxBoundedString
	case len(path) == 2 && sizedVars[path[0]]&(sizedGroups|sizedScopes) != 0 && path[1] == "@items":
		limit = maxBoundedItem
	default:
		return nil
	}
	return &checker.SizeEstimate{Min: 0, Max: limit}
}

// EstimateCallCost implements checker.CostEstimator.
func (inputBounds) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

var (
	noClaims = map[string]any{}
	noList   = []string{}
)

// activation resolves a condition's variables from the facts on demand, so
// an expression pays only for the variables it reads. Strings and bools
// are returned as CEL values, which CEL would otherwise convert them to
// after boxing them in an interface: one allocation each instead of two.
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
		return types.String(in.Subject), true
	case varEmail:
		// Only a verified address is visible: a condition such as
		// email.endsWith("@example.com") must not admit an address
		// anyone could type.
		if in.EmailTrusted() {
			return types.String(in.Email), true
		}
		return types.String(""), true
	case varEmailVerified:
		return types.Bool(in.EmailTrusted()), true
	case varGroups:
		if a.f.Groups == nil {
			return noList, true
		}
		return a.f.Groups, true
	case varClientID:
		return types.String(in.ClientID), true
	case varMachine:
		return types.Bool(in.Machine), true
	case varScopes:
		if in.Scopes == nil {
			return noList, true
		}
		return in.Scopes, true
	case varMethod:
		return types.String(a.f.Method), true
	case varName:
		return types.String(a.f.Name), true
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
