package policyfile

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// The file's layout. Every field is optional; New in domain/policy says
// which combinations make sense.
type file struct {
	GroupClaims   []yaml.Node           `yaml:"group_claims"`
	Admission     *admissionSection     `yaml:"admission"`
	Authorization *authorizationSection `yaml:"authorization"`
}

type admissionSection struct {
	Allow   allowSection `yaml:"allow"`
	Require string       `yaml:"require"`
}

type allowSection struct {
	Emails         []string `yaml:"emails"`
	Domains        []string `yaml:"domains"`
	Subjects       []string `yaml:"subjects"`
	Groups         []string `yaml:"groups"`
	MachineClients []string `yaml:"machine_clients"`
	Condition      string   `yaml:"condition"`
}

type authorizationSection struct {
	Default string        `yaml:"default"`
	Rules   []ruleSection `yaml:"rules"`
}

type ruleSection struct {
	Name      string   `yaml:"name"`
	Methods   []string `yaml:"methods"`
	Tools     []string `yaml:"tools"`
	Prompts   []string `yaml:"prompts"`
	Resources []string `yaml:"resources"`
	Scopes    []string `yaml:"scopes"`
	Groups    []string `yaml:"groups"`
	Condition string   `yaml:"condition"`
}

// shape is what a node of the file must look like. It mirrors the structs
// above; a test checks that the two agree. Checking the shape before
// decoding gives every problem a path in the file ("authorization.rules[2]")
// instead of the decoder's Go type names.
type shape struct {
	kind  shapeKind
	keys  map[string]*shape // of a section
	items *shape            // of a list of sections
}

type shapeKind uint8

const (
	scalarShape    shapeKind = iota // a string
	listShape                       // a list of strings
	sectionShape                    // a mapping with known keys
	sectionsShape                   // a list of sections
	claimListShape                  // group_claims: strings or lists of strings
)

var (
	str  = &shape{kind: scalarShape}
	strs = &shape{kind: listShape}
)

var fileShape = &shape{kind: sectionShape, keys: map[string]*shape{
	"group_claims": {kind: claimListShape},
	"admission": {kind: sectionShape, keys: map[string]*shape{
		"allow": {kind: sectionShape, keys: map[string]*shape{
			"emails": strs, "domains": strs, "subjects": strs, "groups": strs, "machine_clients": strs, "condition": str,
		}},
		"require": str,
	}},
	"authorization": {kind: sectionShape, keys: map[string]*shape{
		"default": str,
		"rules": {kind: sectionsShape, items: &shape{kind: sectionShape, keys: map[string]*shape{
			"name": str, "methods": strs, "tools": strs, "prompts": strs, "resources": strs,
			"scopes": strs, "groups": strs, "condition": str,
		}}},
	}},
}}

// checkShape reports every node of n that does not fit sh, by its path in
// the file: above all an unknown key, so that a misspelt "scope:" is an
// error instead of a rule that silently requires nothing, and an empty
// section, so that "admission:" with every line below it commented out does
// not quietly admit everyone.
func checkShape(n *yaml.Node, sh *shape, path string, errs *[]error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	bad := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s (line %d): %s", orTop(path), n.Line, fmt.Sprintf(format, args...)))
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		if sh.kind == sectionShape {
			bad("empty section; remove it or fill it in")
		}
		return
	}
	switch sh.kind {
	case scalarShape:
		if n.Kind != yaml.ScalarNode {
			bad("expected a string")
		}
	case listShape:
		if n.Kind != yaml.SequenceNode {
			bad("expected a list, as in [a, b]")
			return
		}
		for i, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				*errs = append(*errs, fmt.Errorf("%s[%d] (line %d): expected a string", path, i, item.Line))
			}
		}
	case claimListShape:
		if n.Kind != yaml.SequenceNode {
			bad("expected a list of claim names")
		}
	case sectionsShape:
		if n.Kind != yaml.SequenceNode {
			bad("expected a list")
			return
		}
		for i, item := range n.Content {
			checkShape(item, sh.items, fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case sectionShape:
		if n.Kind != yaml.MappingNode {
			bad("expected a mapping with the keys %s", known(sh))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child, ok := sh.keys[k.Value]
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s: unknown key %q (line %d); known keys: %s", orTop(path), k.Value, k.Line, known(sh)))
				continue
			}
			checkShape(v, child, join(path, k.Value), errs)
		}
	}
}

func known(sh *shape) string {
	keys := make([]string, 0, len(sh.keys))
	for k := range sh.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// decode reads the YAML document into f, collecting every problem.
func decode(data []byte, f *file) []error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []error{fmt.Errorf("not valid YAML: %w", err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return []error{errors.New("the file is empty; without a policy, leave the setting unset")}
	}
	root := doc.Content[0]
	var errs []error
	checkShape(root, fileShape, "", &errs)
	if root.Kind != yaml.MappingNode {
		return errs
	}
	// The decoder skips what does not fit and decodes the rest, so the
	// remaining checks still see every entry that is well formed. Its own
	// complaints repeat the shape problems, naming Go types instead of
	// places in the file: they count only when the shape check found none.
	if err := root.Decode(f); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	return errs
}

// claimPaths reads group_claims: each entry is a claim name (tried as one
// key, then as a dotted path) or a list of path segments.
func claimPaths(nodes []yaml.Node) ([]policy.ClaimPath, []error) {
	var (
		out  []policy.ClaimPath
		errs []error
	)
	for i := range nodes {
		n := &nodes[i]
		where := fmt.Sprintf("group_claims[%d]", i)
		var (
			c   policy.ClaimPath
			err error
		)
		switch n.Kind {
		case yaml.ScalarNode:
			c, err = policy.ParseClaimPath(n.Value)
		case yaml.SequenceNode:
			var segs []string
			if err = n.Decode(&segs); err == nil {
				c, err = policy.ClaimPathOf(segs...)
			}
		default:
			err = errors.New("write a claim name or a list of path segments")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (line %d): %w", where, n.Line, err))
			continue
		}
		out = append(out, c)
	}
	return out, errs
}
