package policyfile_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// costCorpus are rule conditions of the kinds operators write, and a few
// that work the string functions hard. bounded says whether the checker
// proves a bound under the default limit: the proof that such a condition
// needs no cost tracker rests on the checker's estimate never being below
// what the tracker counts.
var costCorpus = []struct {
	src     string
	bounded bool
}{
	{`email_verified && email.endsWith("@faulty.example")`, true},
	{`name == "search" && client_id != ""`, true},
	{`!("blocked" in groups)`, true},
	{`"security" in groups || "admins" in scopes`, true},
	{`machine || sub.startsWith("svc-")`, true},
	{`method.startsWith("tools/") && name.contains("/secret/")`, true},
	{`groups.exists(g, g.startsWith("eng-"))`, true},
	{`groups.exists(g, name.startsWith("file:///teams/" + g + "/"))`, true},
	{`scopes.all(s, s.size() < 100)`, true},
	{`groups.filter(g, g.endsWith("-admin")).size() > 0`, true},
	{`groups.map(g, "role:" + g).exists(r, r == name)`, true},
	{`name.matches("^file:///[a-z]+/.*$")`, true},
	{`name.contains(sub)`, true},
	{`size(groups) > 3 && size(scopes) < 400 && groups[0] < name`, true},
	{`claims.?hd.orValue("") == "example.com"`, true},
	{`has(claims.department) && "x" in claims`, true},
	{`machine ? client_id == "ci" : email == sub + "@example.com"`, true},
	// Quadratic over two bounded inputs: over the limit at the bounds.
	{`name.matches(sub)`, false},
	{`groups.exists(g, scopes.exists(s, s == g))`, false},
	// The string extensions are always tracked: the checker underestimates
	// join by the length of the string it builds.
	{`groups.join(",").contains("admin")`, false},
	{`sub.lowerAscii() == email.lowerAscii()`, false},
	{`name.split("/").exists(p, p == "secret")`, false},
	{`name.replace("/", "//").size() > 10`, false},
	// Claims are of any size.
	{`claims.tags.exists(t, t == "x")`, false},
}

// atBounds returns facts whose every bounded variable is as large as the
// bounds allow, made of fill, so that no comparison ends early.
func atBounds(fill string) *policy.Facts {
	s := strings.Repeat(fill, policyfile.MaxBoundedString/len(fill))
	list := make([]string, policyfile.MaxBoundedList)
	for i := range list {
		list[i] = strings.Repeat(fill, policyfile.MaxBoundedItem/len(fill))
	}
	in := &policy.Input{Subject: s, ClientID: s, Email: s, EmailVerified: true, Scopes: list,
		Claims: map[string]any{"hd": "example.com", "department": "eng", "x": 1.0}}
	return &policy.Facts{Input: in, Groups: list, Method: s, Name: s}
}

func TestABoundedConditionCostsNoMoreThanItsBound(t *testing.T) {
	for _, tc := range costCorpus {
		t.Run(tc.src, func(t *testing.T) {
			c, err := policyfile.CompileRuleCondition(tc.src, policyfile.DefaultCostLimit)
			require.NoError(t, err)
			require.Equal(t, tc.bounded, c.Bounded())
			bound, err := policyfile.Estimate(tc.src)
			require.NoError(t, err)
			for _, fill := range []string{"a", "/", "a/", "é", "A@b/", "-admin"} {
				f := atBounds(fill)
				f.Input.Claims["tags"] = []any{"y"}
				_, cost, err := c.TrackedCost(f)
				if !tc.bounded {
					continue
				}
				require.NoError(t, err)
				require.LessOrEqual(t, cost, bound, "fill %q: the tracker counted more than the checker's bound", fill)
				require.LessOrEqual(t, bound, uint64(policyfile.DefaultCostLimit))
			}
		})
	}
}

func TestAConditionWhoseBoundIsOverTheLimitIsStoppedAtTheLimit(t *testing.T) {
	const src = `groups.exists(g, scopes.exists(s, s == g + "x"))`
	c, err := policyfile.CompileRuleCondition(src, policyfile.DefaultCostLimit)
	require.NoError(t, err)
	require.False(t, c.Bounded(), "a quadratic condition over two lists has no bound under the limit")

	p := parse(t, "authorization:\n  rules:\n    - tools: [\"*\"]\n      condition: '"+src+"'\n")
	list := func(n int, prefix string) []any {
		l := make([]any, n)
		for i := range l {
			l[i] = prefix + strings.Repeat("g", i%7)
		}
		return l
	}
	call := policy.Call{Method: policy.MethodToolsCall, Name: "t"}
	// Both lists within the bounds, but 400 × 400 comparisons cost more
	// than the limit: only the tracker stops it.
	scopes := make([]string, 400)
	for i := range scopes {
		scopes[i] = "s"
	}
	big := &policy.Input{Subject: "u", Scopes: scopes, Claims: map[string]any{"groups": list(400, "g")}}
	d := p.Authorize(t.Context(), big, call)
	require.False(t, d.Allowed())
	require.ErrorIs(t, d.Err, policyfile.ErrCostLimit)

	small := &policy.Input{Subject: "u", Scopes: []string{"gx"}, Claims: map[string]any{"groups": list(3, "g")}}
	require.True(t, p.Authorize(t.Context(), small, call).Allowed())
}

func TestInputsBeyondTheBoundsAreCountedAgainstTheLimit(t *testing.T) {
	call := policy.Call{Method: policy.MethodToolsCall, Name: "t"}
	t.Run("a long list", func(t *testing.T) {
		const src = `groups.exists(g, g.startsWith("eng-"))`
		c, err := policyfile.CompileRuleCondition(src, policyfile.DefaultCostLimit)
		require.NoError(t, err)
		require.True(t, c.Bounded())
		groups := make([]any, 50_000)
		for i := range groups {
			groups[i] = "ops"
		}
		in := &policy.Input{Subject: "u", Claims: map[string]any{"groups": groups}}
		f := &policy.Facts{Input: in, Groups: make([]string, len(groups))}
		_, err = c.EvalBounded(f)
		require.NoError(t, err, "the program without a tracker would let it run to the end")

		p := parse(t, "authorization:\n  rules:\n    - tools: [\"*\"]\n      condition: '"+src+"'\n")
		d := p.Authorize(t.Context(), in, call)
		require.False(t, d.Allowed())
		require.ErrorIs(t, d.Err, policyfile.ErrCostLimit)
		groups[0] = "eng-x"
		require.True(t, p.Authorize(t.Context(), in, call).Allowed(), "a match found early is cheap")
	})
	t.Run("long items", func(t *testing.T) {
		const src = `groups.exists(g, g.contains("admin"))`
		c, err := policyfile.CompileRuleCondition(src, policyfile.DefaultCostLimit)
		require.NoError(t, err)
		require.True(t, c.Bounded())
		groups := make([]any, 200)
		for i := range groups {
			groups[i] = strings.Repeat("o", 10_000)
		}
		in := &policy.Input{Subject: "u", Claims: map[string]any{"groups": groups}}
		p := parse(t, "authorization:\n  rules:\n    - tools: [\"*\"]\n      condition: '"+src+"'\n")
		d := p.Authorize(t.Context(), in, call)
		require.False(t, d.Allowed())
		require.ErrorIs(t, d.Err, policyfile.ErrCostLimit)
	})
	t.Run("a long string", func(t *testing.T) {
		const src = `name.contains(sub)`
		const limit = 50_000
		c, err := policyfile.CompileRuleCondition(src, limit)
		require.NoError(t, err)
		require.True(t, c.Bounded(), "its bound at the largest bounded sub is under %d", limit)
		p := parse(t, "authorization:\n  rules:\n    - tools: [\"*\"]\n      condition: '"+src+"'\n", policyfile.WithCostLimit(limit))
		name := policy.Call{Method: policy.MethodToolsCall, Name: strings.Repeat("t", 2000) + "X"}
		long := &policy.Input{Subject: strings.Repeat("X", 100_000)}
		d := p.Authorize(t.Context(), long, name)
		require.False(t, d.Allowed())
		require.ErrorIs(t, d.Err, policyfile.ErrCostLimit)
		require.True(t, p.Authorize(t.Context(), &policy.Input{Subject: "X"}, name).Allowed())
	})
}

func TestAConditionWithoutAComprehensionIsDecidedWhateverTheContext(t *testing.T) {
	// CEL checks for cancellation only between the steps of a
	// comprehension, so a condition without one was always decided in
	// full; it is now evaluated without the context at all.
	p := parse(t, "authorization:\n  rules:\n    - tools: [\"*\"]\n      condition: 'sub == \"u\"'\n")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	call := policy.Call{Method: policy.MethodToolsCall, Name: "t"}
	d := p.Authorize(ctx, &policy.Input{Subject: "u"}, call)
	require.True(t, d.Allowed(), "%+v", d)
	require.NoError(t, d.Err)
	require.False(t, p.Authorize(ctx, &policy.Input{Subject: "v"}, call).Allowed())
}

// documentedVariables reads the names of the variables table of
// docs/policy.md.
func documentedVariables(t *testing.T) []string {
	doc, err := os.ReadFile("../../docs/policy.md")
	require.NoError(t, err)
	_, table, ok := strings.Cut(string(doc), "| variable | type | value |\n|---|---|---|\n")
	require.True(t, ok, "the variables table of docs/policy.md")
	table, _, _ = strings.Cut(table, "\n\n")
	var names []string
	for _, row := range strings.Split(table, "\n") {
		name, _, _ := strings.Cut(strings.TrimPrefix(row, "| `"), "`")
		names = append(names, name)
	}
	return names
}

func TestEveryDocumentedVariableReadsTheSameWithAndWithoutTheTracker(t *testing.T) {
	full := &policy.Facts{
		Input: &policy.Input{
			Subject: "s1", ClientID: "c1", Email: "a@x.example", EmailVerified: true, Scopes: []string{"mcp"},
			Claims: map[string]any{"roles": []any{"r1", "r2"}, "tenant": "t1"},
		},
		Groups: []string{"r1", "r2"}, Method: "tools/call", Name: "t",
	}
	empty := &policy.Facts{Input: &policy.Input{Email: "a@x.example"}}
	machine := &policy.Facts{Input: &policy.Input{Subject: "m1", ClientID: "m1", Machine: true, Email: "m@x.example", TrustEmail: true}}
	// Each variable, read in every set of facts: the expression must be
	// true in all of them.
	reads := map[string]string{
		"sub":            `sub == ["s1", "", "m1"][i]`,
		"email":          `email == ["a@x.example", "", ""][i]`,
		"email_verified": `email_verified == [true, false, false][i]`,
		"groups":         `groups == [["r1", "r2"], [], []][i]`,
		"claims":         `claims == [{"roles": ["r1", "r2"], "tenant": "t1"}, {}, {}][i]`,
		"client_id":      `client_id == ["c1", "", "m1"][i]`,
		"machine":        `machine == [false, false, true][i]`,
		"scopes":         `scopes == [["mcp"], [], []][i]`,
		"method":         `method == ["tools/call", "", ""][i]`,
		"name":           `name == ["t", "", ""][i]`,
	}
	names := documentedVariables(t)
	require.Len(t, names, len(reads), "every documented variable is read here: %v", names)
	for _, name := range names {
		expr, ok := reads[name]
		require.True(t, ok, "the documented variable %q is not read by this test", name)
		for i, f := range []*policy.Facts{full, empty, machine} {
			src := strings.ReplaceAll(expr, "[i]", fmt.Sprintf("[%d]", i))
			c, err := policyfile.CompileRuleCondition(src, policyfile.DefaultCostLimit)
			require.NoError(t, err)
			got, err := c.EvalTracked(f)
			require.NoError(t, err)
			require.True(t, got, "%s with the tracker", src)
			if c.Bounded() {
				got, err := c.EvalBounded(f)
				require.NoError(t, err)
				require.True(t, got, "%s without the tracker", src)
			}
			got, err = c.Eval(t.Context(), f)
			require.NoError(t, err)
			require.True(t, got, "%s", src)
		}
		// And a value of another set of facts is not the full facts' one.
		other := 1
		if name == "machine" {
			other = 2
		}
		wrong := strings.ReplaceAll(expr, "[i]", fmt.Sprintf("[%d]", other))
		c, err := policyfile.CompileRuleCondition(wrong, policyfile.DefaultCostLimit)
		require.NoError(t, err)
		got, err := c.Eval(t.Context(), full)
		require.NoError(t, err)
		require.False(t, got, "%s", wrong)
	}
}

// FuzzBoundedConditionsAgreeWithTheTracker: for any rule condition the
// checker bounds under the limit, and facts within the bounds, the program
// without the tracker gives what the tracked one gives, and the tracker
// never counts more than the bound (so it could not have stopped it).
func FuzzBoundedConditionsAgreeWithTheTracker(f *testing.F) {
	for _, tc := range costCorpus {
		f.Add(tc.src, "file:///teams/eng-a/x", "eng-a,security,-admin", 3)
	}
	for _, src := range []string{
		`claims.?org.orValue({}).groups.exists(g, g == "admin")`,
		`(has(claims.profile) ? claims.profile : {"name": ""}).name.contains("admin")`,
	} {
		f.Add(src, "x", "a,b", 1)
	}
	// Claims beyond every bound, under the names of bounded variables: a
	// claim must never be estimated as one of them.
	overList := make([]any, 4*policyfile.MaxBoundedList)
	for i := range overList {
		overList[i] = strings.Repeat("o", policyfile.MaxBoundedItem)
	}
	overString := strings.Repeat("o", 4*policyfile.MaxBoundedString)
	f.Fuzz(func(t *testing.T, src, s, list string, repeat int) {
		c, err := policyfile.CompileRuleCondition(src, policyfile.DefaultCostLimit)
		if err != nil || !c.Bounded() {
			return
		}
		bound, err := policyfile.Estimate(src)
		require.NoError(t, err)
		require.LessOrEqual(t, bound, uint64(policyfile.DefaultCostLimit))
		repeat = max(1, min(repeat, policyfile.MaxBoundedList))
		s = strings.Repeat(s, min(repeat, policyfile.MaxBoundedString/max(1, len(s))))
		var items []string
		for range repeat {
			for _, v := range strings.Split(list, ",") {
				if len(items) < policyfile.MaxBoundedList && len(v) <= policyfile.MaxBoundedItem {
					items = append(items, v)
				}
			}
		}
		in := &policy.Input{Subject: s, ClientID: s, Email: s, EmailVerified: true, Scopes: items,
			Claims: map[string]any{"hd": s, "department": s, "x": 1.0, "tags": []any{s},
				"groups": overList, "org": map[string]any{"groups": overList, "name": overString},
				"profile": map[string]any{"name": overString}}}
		facts := &policy.Facts{Input: in, Groups: items, Method: s, Name: s}
		want, cost, wantErr := c.TrackedCost(facts)
		got, gotErr := c.EvalBounded(facts)
		require.Equal(t, wantErr == nil, gotErr == nil, "tracked: %v, bounded: %v", wantErr, gotErr)
		if wantErr != nil {
			require.NotErrorIs(t, wantErr, policyfile.ErrCostLimit)
			return
		}
		require.Equal(t, want, got)
		require.LessOrEqual(t, cost, bound)
	})
}

func TestAClaimCannotPassForABoundedVariable(t *testing.T) {
	// The estimator knows a value by its path; a field selected from a
	// value without a path of its own has the field's name alone as its
	// path, so a claim selected as .groups would be estimated as the
	// groups variable and run without the tracker, however large.
	huge := make([]any, 300_000)
	for i := range huge {
		huge[i] = "x"
	}
	huge[len(huge)-1] = "admin"
	for _, src := range []string{
		`claims.?org.orValue({}).groups.exists(g, g == "admin")`,
		`(machine ? claims : claims).groups.exists(g, g == "admin")`,
		`{"groups": claims.tags}.groups.exists(g, g == "admin")`,
		`{"groups": claims.tags}["groups"].exists(g, g == "admin")`,
		`claims.tags.exists(groups, groups == "admin")`,
	} {
		t.Run(src, func(t *testing.T) {
			c, err := policyfile.CompileRuleCondition(src, policyfile.DefaultCostLimit)
			require.NoError(t, err)
			require.False(t, c.Bounded(), "the expression must keep the tracker")

			p := parse(t, "authorization:\n  rules:\n    - tools: [\"*\"]\n      condition: '"+src+"'\n")
			in := &policy.Input{Subject: "u", Claims: map[string]any{"org": map[string]any{"groups": huge}, "tags": huge, "groups": huge}}
			d := p.Authorize(t.Context(), in, policy.Call{Method: policy.MethodToolsCall, Name: "t"})
			require.False(t, d.Allowed(), "over the limit is a refusal, never an allowance")
			require.ErrorIs(t, d.Err, policyfile.ErrCostLimit)
		})
	}
	t.Run("has() of such a field stays bounded", func(t *testing.T) {
		c, err := policyfile.CompileRuleCondition(`has(claims.groups) && "a" in groups`, policyfile.DefaultCostLimit)
		require.NoError(t, err)
		require.True(t, c.Bounded())
	})
}
