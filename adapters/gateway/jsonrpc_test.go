package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
)

// JSON-RPC error codes the gateway answers with.
const (
	codeParse          = -32700
	codeInvalidRequest = -32600
	codeInvalidParams  = -32602
	codeHeaderMismatch = -32020
	codeForbidden      = -31403
)

func TestTheGatewayReadsMethodNameAndIDOfAJSONRPCMessage(t *testing.T) {
	tests := []struct {
		name string
		body string
		want gateway.Message
	}{
		{"a tool call", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"q":"x"}}}`,
			gateway.Message{Kind: "request", Method: "tools/call", Name: "search", ID: "7"}},
		{"params before method", `{"params":{"arguments":{"name":"decoy"},"name":"search"},"method":"tools/call","id":"a","jsonrpc":"2.0"}`,
			gateway.Message{Kind: "request", Method: "tools/call", Name: "search", ID: `"a"`}},
		{"an escaped name is read unescaped", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"n\u0061me":"del\u0065te_all"}}`,
			gateway.Message{Kind: "request", Method: "tools/call", Name: "delete_all", ID: "1"}},
		{"a prompt", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"summarize"}}`,
			gateway.Message{Kind: "request", Method: "prompts/get", Name: "summarize", ID: "1"}},
		{"a resource read names its URI", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a b","name":"ignored"}}`,
			gateway.Message{Kind: "request", Method: "resources/read", Name: "file:///a b", ID: "1"}},
		{"a subscription names its URI", `{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///a"}}`,
			gateway.Message{Kind: "request", Method: "resources/subscribe", Name: "file:///a", ID: "1"}},
		{"dots inside a segment are a name", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://public/v1..2/a.b"}}`,
			gateway.Message{Kind: "request", Method: "resources/read", Name: "docs://public/v1..2/a.b", ID: "1"}},
		{"other methods name nothing", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"x","cursor":"c"}}`,
			gateway.Message{Kind: "request", Method: "tools/list", ID: "1"}},
		{"a notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			gateway.Message{Kind: "notification", Method: "notifications/initialized"}},
		{"a client's response", `{"jsonrpc":"2.0","id":3,"result":{"roots":[]}}`,
			gateway.Message{Kind: "response", ID: "3"}},
		{"a client's error response", `{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"no"}}`,
			gateway.Message{Kind: "response", ID: "3"}},
		{"whitespace around", " \r\n\t{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n",
			gateway.Message{Kind: "request", Method: "ping", ID: "1"}},

		{"not JSON", `{"jsonrpc":"2.0",`, gateway.Message{Fault: codeParse}},
		{"empty object member", `{"jsonrpc":"2.0","id":1,"method":"ping",}`, gateway.Message{Fault: codeParse}},
		{"a second message after the first", `{"jsonrpc":"2.0","id":1,"method":"ping"}{"jsonrpc":"2.0","id":2,"method":"ping"}`, gateway.Message{Fault: codeParse}},
		{"a duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, gateway.Message{Fault: codeParse}},
		{"a duplicate name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","name":"delete_all"}}`, gateway.Message{Fault: codeParse}},
		{"a duplicate hidden by an escape", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","n\u0061me":"delete_all"}}`, gateway.Message{Fault: codeParse}},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"se\xffarch\"}}", gateway.Message{Fault: codeParse}},
		{"a name differing in case", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","Name":"delete_all"}}`, gateway.Message{Fault: codeInvalidRequest}},
		{"a name in capitals", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","NAME":"delete_all"}}`, gateway.Message{Fault: codeInvalidRequest}},
		{"params with a long s", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"},"paramſ":{"name":"delete_all"}}`, gateway.Message{Fault: codeInvalidRequest}},
		{"a method differing in case", `{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}`, gateway.Message{Fault: codeInvalidRequest}},
		{"a batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, gateway.Message{Fault: codeInvalidRequest}},
		{"not an object", `"tools/call"`, gateway.Message{Fault: codeInvalidRequest}},
		{"no version", `{"id":1,"method":"ping"}`, gateway.Message{Fault: codeInvalidRequest}},
		{"another version", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, gateway.Message{Fault: codeInvalidRequest}},
		{"a method that is not a string", `{"jsonrpc":"2.0","id":1,"method":["tools/call"]}`, gateway.Message{Fault: codeInvalidRequest}},
		{"an object id", `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, gateway.Message{Fault: codeInvalidRequest}},
		{"neither request nor response", `{"jsonrpc":"2.0","id":1}`, gateway.Message{Fault: codeInvalidRequest}},
		{"a tool call without a name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}`, gateway.Message{Fault: codeInvalidParams}},
		{"a tool call whose name is not a string", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["delete_all"]}}`, gateway.Message{Fault: codeInvalidParams}},
		{"a tool call whose params are not an object", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["delete_all"]}`, gateway.Message{Fault: codeInvalidParams}},
		{"a read without a URI", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"file:///a"}}`, gateway.Message{Fault: codeInvalidParams}},
		// A rule allowing docs://public/* must not let a backend that
		// resolves paths serve docs://private.
		{"a URI climbing out with dot segments", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://public/../private/payroll"}}`, gateway.Message{Fault: codeInvalidParams}},
		{"a URI with a dot segment of its own", `{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"docs://public/./x"}}`, gateway.Message{Fault: codeInvalidParams}},
		{"a URI with encoded dots", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://public/%2E%2e/private/payroll"}}`, gateway.Message{Fault: codeInvalidParams}},
		{"a URI with an encoded slash", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://public/..%2fprivate"}}`, gateway.Message{Fault: codeInvalidParams}},
		{"a URI with a backslash climb", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://public\\..\\private"}}`, gateway.Message{Fault: codeInvalidParams}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, gateway.ReadMessage([]byte(tt.body)))
		})
	}
}

func TestMirroredHeadersMustAgreeWithTheBody(t *testing.T) {
	call := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather"}}`)
	read := []byte(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///tmp/é.txt"}}`)
	list := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	unsubscribe := []byte(`{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe","params":{"uri":"file:///a"}}`)
	response := []byte(`{"jsonrpc":"2.0","id":1,"result":{}}`)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name   string
		header http.Header
		body   []byte
		ok     bool
	}{
		{"both agree", h("Mcp-Method", "tools/call", "Mcp-Name", "get_weather"), call, true},
		{"method only", h("Mcp-Method", "tools/call"), call, true},
		{"name only", h("Mcp-Name", "get_weather"), call, true},
		{"Base64 name", h("Mcp-Method", "resources/read", "Mcp-Name", "=?base64?ZmlsZTovLy90bXAvw6kudHh0?="), read, true},
		{"a name on a method that names nothing is not compared", h("Mcp-Method", "tools/list", "Mcp-Name", "x"), list, true},
		{"unsubscribe is not compared", h("Mcp-Method", "resources/unsubscribe", "Mcp-Name", "file:///b"), unsubscribe, true},
		{"another method", h("Mcp-Method", "tools/list"), call, false},
		{"methods are case-sensitive", h("Mcp-Method", "Tools/Call"), call, false},
		{"another name", h("Mcp-Method", "tools/call", "Mcp-Name", "delete_all"), call, false},
		{"a Base64 name that differs", h("Mcp-Name", "=?base64?ZGVsZXRlX2FsbA==?="), call, false},
		{"Base64 that is not", h("Mcp-Name", "=?base64?not base64!?="), call, false},
		{"the sentinel markers are case-sensitive", h("Mcp-Name", "=?BASE64?Z2V0X3dlYXRoZXI=?="), call, false},
		{"two methods", h("Mcp-Method", "tools/call", "Mcp-Method", "tools/call"), call, false},
		{"two names", h("Mcp-Name", "get_weather", "Mcp-Name", "get_weather"), call, false},
		{"a method on a response", h("Mcp-Method", "tools/call"), response, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := gateway.CheckMirrors(tt.header, tt.body)
			if tt.ok {
				require.Empty(t, why)
			} else {
				require.True(t, strings.HasPrefix(why, "Header mismatch: "), why)
			}
		})
	}
}

// FuzzReadMessage checks the reading of request bodies against two other
// JSON readers: whatever the gateway accepts, encoding/json decodes to the
// same method and name, both into a map (exact member names) and into a
// struct (member names matched without regard to case, as many Go MCP
// servers decode). A body any JSON reader refuses, the gateway refuses.
// Nothing panics.
func FuzzReadMessage(f *testing.F) {
	seeds := []string{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"q":"x"}}}`,
		`{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///a"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"name":"x"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":3,"result":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Name":"b"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","n\u0061me":"b"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\ud800"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		`{"jsonrpc":"2.0","id":1,"method":"ping"} x`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"\xff\"}}",
		`{"jsonrpc":"2.0","id":1e400,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"},"paramſ":{"name":"y"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got := gateway.ReadMessage(body)
		if !json.Valid(body) {
			if got.Fault == 0 {
				t.Fatalf("accepted a body encoding/json refuses: %q", body)
			}
			return
		}
		if got.Fault != 0 {
			return
		}
		var exact map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&exact); err != nil {
			t.Fatalf("accepted %q, which is not an object: %v", body, err)
		}
		var folded struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
				URI  string `json:"uri"`
			} `json:"params"`
		}
		// The struct decoding may fail on type mismatches the gateway
		// does not care about (an id of an unexpected type, say); only
		// what it does decode is compared.
		structErr := json.Unmarshal(body, &folded)
		if got.Kind == "response" {
			if _, ok := exact["method"]; ok {
				t.Fatalf("a response with a method: %q", body)
			}
			return
		}
		if exact["method"] != got.Method {
			t.Fatalf("method %q, encoding/json reads %v: %q", got.Method, exact["method"], body)
		}
		if structErr == nil && folded.Method != got.Method {
			t.Fatalf("method %q, a case-insensitive decoder reads %q: %q", got.Method, folded.Method, body)
		}
		if got.Name == "" {
			return
		}
		params, _ := exact["params"].(map[string]any)
		field, want := "name", folded.Params.Name
		if strings.HasPrefix(got.Method, "resources/") {
			field, want = "uri", folded.Params.URI
		}
		if params[field] != got.Name {
			t.Fatalf("name %q, encoding/json reads %v: %q", got.Name, params[field], body)
		}
		if structErr == nil && want != got.Name {
			t.Fatalf("name %q, a case-insensitive decoder reads %q: %q", got.Name, want, body)
		}
		if !bytes.Contains(body, []byte(got.ID)) {
			t.Fatalf("id %q is not a part of the body %q", got.ID, body)
		}
	})
}
