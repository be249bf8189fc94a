package policy

import (
	"errors"
	"fmt"
	"strings"
)

// maxGlobLen bounds a pattern: names and URIs are short, and a bound keeps
// a mistaken paste from becoming a slow matcher.
const maxGlobLen = 1024

// Glob is a precompiled name pattern for tool names, prompt names, resource
// URIs and JSON-RPC methods. Only '*' is special: it matches any run of
// characters, '/' included, so "file:///reports/*" covers every file below
// reports. '?' and '[' are literal because they occur in URIs. A literal
// '*' is written "\*" and a literal backslash "\\". Matching compares bytes:
// "Read_*" does not match "read_file".
type Glob struct {
	pattern string
	// parts are the literal runs between stars; a pattern without a star
	// has exactly one part and matches only itself.
	parts  []string
	minLen int
}

// CompileGlob parses pattern.
func CompileGlob(pattern string) (Glob, error) {
	if pattern == "" {
		return Glob{}, errors.New("empty pattern")
	}
	if len(pattern) > maxGlobLen {
		return Glob{}, fmt.Errorf("pattern longer than %d bytes", maxGlobLen)
	}
	var (
		parts    []string
		lit      strings.Builder
		prevStar bool
	)
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		star := false
		switch {
		case c < 0x20 || c == 0x7f:
			return Glob{}, fmt.Errorf("pattern %q contains a control character", pattern)
		case c == '\\':
			if i+1 == len(pattern) {
				return Glob{}, fmt.Errorf("pattern %q ends with a lone backslash (write \\\\ for a backslash)", pattern)
			}
			next := pattern[i+1]
			if next != '*' && next != '\\' {
				return Glob{}, fmt.Errorf("pattern %q: backslash may only escape '*' or '\\'", pattern)
			}
			lit.WriteByte(next)
			i++
		case c == '*':
			star = true
			// Consecutive stars are one star: '*' already crosses '/'.
			if !prevStar {
				parts = append(parts, lit.String())
				lit.Reset()
			}
		default:
			lit.WriteByte(c)
		}
		prevStar = star
	}
	parts = append(parts, lit.String())
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return Glob{pattern: pattern, parts: parts, minLen: n}, nil
}

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// Literal returns the one string g matches when it has no star.
func (g Glob) Literal() (string, bool) {
	if len(g.parts) == 1 {
		return g.parts[0], true
	}
	return "", false
}

// Match reports whether s matches the whole pattern. It anchors the first
// and the last literal run and finds the runs between them leftmost-first,
// which is exact for patterns whose only wildcard is '*'; it allocates
// nothing and runs in time linear in len(s) times the number of runs.
func (g Glob) Match(s string) bool {
	last := len(g.parts) - 1
	if last < 0 {
		return false
	}
	if last == 0 {
		return s == g.parts[0]
	}
	if len(s) < g.minLen {
		return false
	}
	prefix, suffix := g.parts[0], g.parts[last]
	if !strings.HasPrefix(s, prefix) || !strings.HasSuffix(s, suffix) {
		return false
	}
	s = s[len(prefix) : len(s)-len(suffix)]
	for _, mid := range g.parts[1:last] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return true
}
