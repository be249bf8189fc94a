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

// shape is the set of keys a mapping of the file may have, and the shape
// of the mappings below them. It mirrors the structs above; the test
// checks that the two agree.
type shape struct {
	keys map[string]*shape
	// items is the shape of each element when the value is a sequence of
	// mappings.
	items *shape
}

var leaf = (*shape)(nil)

var fileShape = &shape{keys: map[string]*shape{
	"group_claims": leaf,
	"admission": {keys: map[string]*shape{
		"allow": {keys: map[string]*shape{
			"emails": leaf, "domains": leaf, "subjects": leaf, "groups": leaf, "machine_clients": leaf, "condition": leaf,
		}},
		"require": leaf,
	}},
	"authorization": {keys: map[string]*shape{
		"default": leaf,
		"rules": {items: &shape{keys: map[string]*shape{
			"name": leaf, "methods": leaf, "tools": leaf, "prompts": leaf, "resources": leaf,
			"scopes": leaf, "groups": leaf, "condition": leaf,
		}}},
	}},
}}

// checkKeys reports every key of n that sh does not know, by its path in
// the file, so a misspelt key ("scope:" for "scopes:") is an error instead
// of a rule that silently requires nothing.
func checkKeys(n *yaml.Node, sh *shape, path string, errs *[]error) {
	if sh == nil {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case sh.keys != nil && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child, ok := sh.keys[k.Value]
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s: unknown key %q (line %d); known keys: %s", orTop(path), k.Value, k.Line, known(sh)))
				continue
			}
			checkKeys(v, child, join(path, k.Value), errs)
		}
	case sh.items != nil && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			checkKeys(item, sh.items, fmt.Sprintf("%s[%d]", path, i), errs)
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
	if root.Kind != yaml.MappingNode {
		return []error{fmt.Errorf("line %d: the policy must be a mapping (group_claims, admission, authorization)", root.Line)}
	}
	var errs []error
	checkKeys(root, fileShape, "", &errs)
	if err := root.Decode(f); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return append(errs, err)
		}
		for _, msg := range te.Errors {
			if strings.Contains(msg, " not found in type ") {
				continue // an unknown key, reported above with its path
			}
			errs = append(errs, errors.New(msg))
		}
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
