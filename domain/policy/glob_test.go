package policy_test

import (
	"strings"
	"testing"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

func TestGlobMatchesWholeStringsWithStarOnly(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"read_file", "read_file", true},
		{"read_file", "read_files", false},
		{"read_*", "read_file", true},
		{"read_*", "read_", true},
		{"read_*", "rea", false},
		{"read_*", "xread_file", false},
		{"*_file", "delete_file", true},
		{"*_file", "delete_files", false},
		{"*", "", true},
		{"*", "anything/with/slashes", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "acb", false},
		{"a*b*c", "abcbc", true},
		{"a*a", "a", false}, // prefix and suffix may not share the one 'a'
		{"a*a", "aa", true},
		{"ab*ba", "aba", false},
		{"ab*ba", "abba", true},
		{"*x*x*", "x", false},
		{"*x*x*", "axbxc", true},
		{"file:///reports/*", "file:///reports/2024/q1.csv", true},
		{"file:///reports/*", "file:///reportsX", false},
		{"file:///reports/*", "file:///other/reports/a", false},
		{"https://api.example.com/items?id=*", "https://api.example.com/items?id=7", true},
		{"what?", "what?", true}, // '?' is literal: URIs use it
		{"what?", "whatx", false},
		{"a[bc]", "a[bc]", true}, // so is '['
		{"a[bc]", "ab", false},
		{`\*`, "*", true},
		{`\*`, "x", false},
		{`a\**`, "a*bc", true},
		{`a\**`, "abc", false},
		{`a\\b`, `a\b`, true},
		{`a\\*`, `a\xyz`, true},
		{"**", "anything", true},
		{"a**b", "ab", true},
		{"Read_*", "read_file", false}, // bytes, not case-folded
		{"ünï*", "ünïcode", true},
	}
	for _, tt := range tests {
		g, err := policy.CompileGlob(tt.pattern)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", tt.pattern, err)
		}
		if got := g.Match(tt.s); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
		if got := refMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("reference matcher disagrees with the table on %q, %q", tt.pattern, tt.s)
		}
	}
}

func TestGlobRejectsBadPatterns(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"", "empty pattern"},
		{`abc\`, "lone backslash"},
		{`a\b`, "may only escape"},
		{"a\x01b", "control character"},
		{"a\x7fb", "control character"},
		{strings.Repeat("a", 1025), "longer than"},
	}
	for _, tt := range tests {
		_, err := policy.CompileGlob(tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CompileGlob(%q) = %v, want an error containing %q", tt.pattern, err, tt.want)
		}
	}
}

func TestGlobLiteralIsTheUnescapedPattern(t *testing.T) {
	g, err := policy.CompileGlob(`a\*b`)
	if err != nil {
		t.Fatal(err)
	}
	if lit, ok := g.Literal(); !ok || lit != "a*b" {
		t.Fatalf("Literal() = %q, %v; want a*b, true", lit, ok)
	}
	star, err := policy.CompileGlob("a*")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := star.Literal(); ok {
		t.Fatal("a glob with a star has no literal")
	}
	if g.String() != `a\*b` {
		t.Fatalf("String() = %q", g.String())
	}
}

// refMatch is a plainly correct matcher for the same language, by dynamic
// programming over (pattern token, string position), used to check the
// compiled one.
func refMatch(pattern, s string) bool {
	type token struct {
		star bool
		c    byte
	}
	var toks []token
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '\\' && i+1 < len(pattern):
			toks = append(toks, token{c: pattern[i+1]})
			i++
		case c == '*':
			toks = append(toks, token{star: true})
		default:
			toks = append(toks, token{c: c})
		}
	}
	// ok[j] reports whether the tokens seen so far match s[:j].
	ok := make([]bool, len(s)+1)
	ok[0] = true
	for _, t := range toks {
		next := make([]bool, len(s)+1)
		for j := 0; j <= len(s); j++ {
			if t.star {
				next[j] = ok[j] || (j > 0 && next[j-1])
			} else {
				next[j] = j > 0 && ok[j-1] && s[j-1] == t.c
			}
		}
		ok = next
	}
	return ok[len(s)]
}

func FuzzGlobAgreesWithReference(f *testing.F) {
	for _, seed := range [][2]string{
		{"read_*", "read_file"},
		{"a*b*c", "abcbc"},
		{"ab*ba", "aba"},
		{"*x*x*", "axbxc"},
		{`a\**`, "a*bc"},
		{`a\\*`, `a\xyz`},
		{"file:///reports/*", "file:///reports/2024/q1.csv"},
		{"**a**", "bab"},
		{"*************3***", "0\x9e2X*\x88\a\v\x05\xf3"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		g, err := policy.CompileGlob(pattern)
		if err != nil {
			return
		}
		if got, want := g.Match(s), refMatch(pattern, s); got != want {
			t.Fatalf("%q.Match(%q) = %v, reference says %v", pattern, s, got, want)
		}
	})
}
