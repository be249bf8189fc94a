package httpapi

import "testing"

// The gateway's requests bypass the router; underMount decides which.
func TestUnderMountMatchesTheMountPointAndBelowOnly(t *testing.T) {
	for _, tc := range []struct {
		path, mount string
		want        bool
	}{
		{"/mcp", "/mcp", true},
		{"/mcp/", "/mcp", true},
		{"/mcp/sse", "/mcp", true},
		{"/mcpx", "/mcp", false},
		{"/mc", "/mcp", false},
		{"/", "/mcp", false},
		{"/token", "/mcp", false},
		{"/api/mcp", "/api/mcp", true},
		{"/api/mcp2", "/api/mcp", false},
		{"/api/x", "/api/", true},
	} {
		if got := underMount(tc.path, tc.mount); got != tc.want {
			t.Errorf("underMount(%q, %q) = %v, want %v", tc.path, tc.mount, got, tc.want)
		}
	}
}
