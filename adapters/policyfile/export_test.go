package policyfile

import (
	"errors"
	"reflect"
	"slices"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// ShapeKeys lists the keys the shape check accepts at a path; "[]" steps
// into the items of a list of sections.
func ShapeKeys(path ...string) []string {
	sh := fileShape
	for _, p := range path {
		if p == "[]" {
			sh = sh.items
		} else {
			sh = sh.keys[p]
		}
	}
	var keys []string
	for k := range sh.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// FileType is the type the file decodes into.
func FileType() reflect.Type { return reflect.TypeFor[file]() }

// Condition is a compiled rule condition, for tests that look inside it.
type Condition = condition

// CompileRuleCondition compiles src as a rule condition.
func CompileRuleCondition(src string, costLimit uint64) (*Condition, error) {
	return compile("test", src, true, costLimit)
}

// The bounds the program without a cost tracker assumes of its inputs.
const (
	MaxBoundedString = maxBoundedString
	MaxBoundedList   = maxBoundedList
	MaxBoundedItem   = maxBoundedItem
)

// Bounded reports whether c has a program without a cost tracker.
func (c *condition) Bounded() bool { return c.bounded != nil }

// Estimate is the checker's bound on c's cost for inputs within the bounds.
func Estimate(src string) (uint64, error) {
	e, err := envs()
	if err != nil {
		return 0, err
	}
	ast, iss := e[1].Compile(src)
	if iss.Err() != nil {
		return 0, iss.Err()
	}
	est, err := e[1].EstimateCost(ast, inputBounds{})
	return est.Max, err
}

// TrackedCost evaluates c with the cost tracker and returns its result and
// the cost it counted.
func (c *condition) TrackedCost(f *policy.Facts) (bool, uint64, error) {
	out, det, err := c.tracked.Eval(activation{f})
	if err != nil {
		return false, 0, err
	}
	cost := det.ActualCost()
	if cost == nil {
		return false, 0, errors.New("no cost tracked")
	}
	b, _ := out.Value().(bool)
	return b, *cost, nil
}

// EvalBounded evaluates c with its program without a cost tracker,
// whatever the sizes of f.
func (c *condition) EvalBounded(f *policy.Facts) (bool, error) {
	out, _, err := c.bounded.Eval(activation{f})
	if err != nil {
		return false, err
	}
	b, _ := out.Value().(bool)
	return b, nil
}

// EvalTracked evaluates c with its program with the cost tracker.
func (c *condition) EvalTracked(f *policy.Facts) (bool, error) {
	b, _, err := c.TrackedCost(f)
	return b, err
}
