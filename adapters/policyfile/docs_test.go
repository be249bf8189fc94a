package policyfile_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocumentedPoliciesLoad keeps docs/policy.md honest: every example
// loads, and the layout reference (the block with every key) names only
// keys the loader knows.
func TestDocumentedPoliciesLoad(t *testing.T) {
	doc, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := yamlBlock.FindAllSubmatch(doc, -1)
	if len(blocks) < 10 {
		t.Fatalf("found %d YAML blocks in docs/policy.md", len(blocks))
	}
	for i, b := range blocks {
		src := string(b[1])
		_, _, err := policyfile.Parse(b[1])
		if strings.Contains(src, "machine_clients: []") {
			// The layout reference: every key with an empty value.
			if err == nil || strings.Contains(err.Error(), "unknown key") || strings.Contains(err.Error(), "cannot unmarshal") {
				t.Errorf("layout block %d: %v", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("example %d does not load:\n%s\n%v", i, src, err)
		}
	}
}
