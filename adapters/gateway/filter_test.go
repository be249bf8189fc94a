package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/gateway"
	"github.com/oidcproxy/oidcproxy/adapters/policyfile"
	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// listPolicy is a policy file with a rule of each kind: the scope rule and
// the group rule hide tools, the condition (CEL, compiled by the real
// policy file loader) hides resources, and prompts are never hidden.
const listPolicy = `
authorization:
  rules:
    - name: write tools
      tools: ["delete_*", "write_*"]
      scopes: [mcp:write]
    - name: admin tools
      tools: ["admin_*"]
      groups: [admins]
    - name: secret resources
      resources: ["file:///secret/*"]
      condition: '"security" in groups'
`

func parsePolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, _, err := policyfile.Parse([]byte(src))
	require.NoError(t, err)
	return p
}

// reader holds mcp:read and is in no group.
func reader() *policy.Input {
	return &policy.Input{Subject: "alice", ClientID: "c", Scopes: []string{"mcp:read"}, Claims: map[string]any{"groups": []any{"staff"}}}
}

func TestAListAnswerLosesTheEntriesTheCallerMayNotCall(t *testing.T) {
	p := parsePolicy(t, listPolicy)
	var hidden []string
	lf := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindTool, ID: "7",
		Hidden: func(_ context.Context, method string, n int) { hidden = append(hidden, fmt.Sprint(method, " ", n)) }}
	in := `{"jsonrpc":"2.0", "id":7, "result": { "tools": [
    {"name":"search","description":"finds","inputSchema":{"type":"object","properties":{"name":{"type":"string"}}}},
    {"description":"deletes","name":"delete_file","inputSchema":{"type":"object"}},
    {"name":"admin_reset"},
    {"n\u0061me":"write_file"},
    42,
    {"description":"no name at all"},
    {"name":"get_\"quoted\"","annotations":{"readOnlyHint":true}},
    {"name":"search2","Name":"delete_all"},
    {"name":"search3","name":"delete_all"},
    {"name":"list"}
  ], "nextCursor": "abc" } }`
	want := `{"jsonrpc":"2.0", "id":7, "result": { "tools": [` +
		`{"name":"search","description":"finds","inputSchema":{"type":"object","properties":{"name":{"type":"string"}}}},` +
		`{"name":"get_\"quoted\"","annotations":{"readOnlyHint":true}},` +
		`{"name":"list"}` +
		`], "nextCursor": "abc" } }`
	out, matched, err := lf.Message(t.Context(), []byte(in))
	require.NoError(t, err)
	require.True(t, matched)
	require.Equal(t, want, string(out), "kept entries and every byte around the list are unchanged")
	require.Equal(t, []string{"tools/list 7"}, hidden)

	t.Run("a writer sees the write tools", func(t *testing.T) {
		writer := &policy.Input{Subject: "bob", Scopes: []string{"mcp:write"}, Claims: map[string]any{"groups": []any{"admins"}}}
		out, matched, err := gateway.ListFilter{Policy: p, Caller: writer, Kind: policy.KindTool, ID: "7"}.Message(t.Context(), []byte(in))
		require.NoError(t, err)
		require.True(t, matched)
		var msg struct {
			Result struct {
				Tools []map[string]any `json:"tools"`
			} `json:"result"`
		}
		require.NoError(t, json.Unmarshal(out, &msg))
		var names []string
		for _, tool := range msg.Result.Tools {
			names = append(names, fmt.Sprint(tool["name"]))
		}
		require.Equal(t, []string{"search", "delete_file", "admin_reset", "write_file", `get_"quoted"`, "list"}, names,
			"entries whose name is given twice, or twice but for case, are never shown")
	})
}

func TestOnlyTheListAnswerIsFiltered(t *testing.T) {
	p := parsePolicy(t, listPolicy)
	lf := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindTool, ID: `"req-1"`}
	tests := []struct {
		name, msg string
		matched   bool
	}{
		{"the answer", `{"jsonrpc":"2.0","id":"req-1","result":{"tools":[{"name":"delete_x"}]}}`, true},
		{"the answer, its id escaped", `{"jsonrpc":"2.0","id":"req\u002d1","result":{"tools":[]}}`, true},
		{"another request's answer", `{"jsonrpc":"2.0","id":"req-2","result":{"tools":[{"name":"delete_x"}]}}`, false},
		{"an error answer", `{"jsonrpc":"2.0","id":"req-1","error":{"code":-32601,"message":"no"}}`, false},
		{"a notification", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`, false},
		{"a result without the list", `{"jsonrpc":"2.0","id":"req-1","result":{"prompts":[{"name":"delete_x"}]}}`, false},
		{"a list that is not an array", `{"jsonrpc":"2.0","id":"req-1","result":{"tools":{"name":"delete_x"}}}`, false},
		{"not an object", `["tools"]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, matched, err := lf.Message(t.Context(), []byte(tt.msg))
			require.NoError(t, err)
			require.Equal(t, tt.matched, matched)
			if !matched {
				require.Empty(t, out)
			} else {
				require.NotContains(t, string(out), "delete_x")
			}
		})
	}
	t.Run("numeric ids compare as numbers", func(t *testing.T) {
		_, matched, err := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindTool, ID: "7"}.
			Message(t.Context(), []byte(`{"jsonrpc":"2.0","id":7.0,"result":{"tools":[]}}`))
		require.NoError(t, err)
		require.True(t, matched)
	})
	for _, bad := range []string{
		`{"jsonrpc":"2.0","id":"req-1","result":{"tools":[{"name":"search"},]}}`,
		`{"jsonrpc":"2.0","id":"req-1","result":{"tools":[{"name":"search"}]}`,
		`{"jsonrpc":"2.0","id":"req-1","result":{"tools":[{"name":"a"}],"tools":[{"name":"delete_x"}]}}`,
		`{"jsonrpc":"2.0","id":"req-1","result":{"tools":[]}} {}`,
		`{"jsonrpc":"2.0","id":"req-1","result":{"tools":[]},"result":{"tools":[{"name":"delete_x"}]}}`,
		`{"jsonrpc":"2.0","id":"req-1","result":{"tools":[]},"Result":{"tools":[{"name":"delete_x"}]}}`,
		`{"jsonrpc":"2.0","id":"req-1","result":{"tools":[],"Tools":[{"name":"delete_x"}]}}`,
		`{"jsonrpc":"2.0","id":"req-1","result":{"tools":{},"tools":[{"name":"delete_x"}]}}`,
		`{"jsonrpc":"2.0","id":"req-2","id":"req-1","result":{"tools":[{"name":"delete_x"}]}}`,
	} {
		t.Run("an answer that is not one JSON value, or repeats a member, fails: "+bad, func(t *testing.T) {
			_, _, err := lf.Message(t.Context(), []byte(bad))
			require.Error(t, err)
		})
	}
}

func TestResourcesAreFilteredByURIAndPromptsNot(t *testing.T) {
	p := parsePolicy(t, listPolicy)
	in := `{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///secret/keys","name":"public-looking"},{"uri":"file:///docs/a","name":"file:///secret/x"}]}}`
	out, matched, err := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindResource, ID: "1"}.Message(t.Context(), []byte(in))
	require.NoError(t, err)
	require.True(t, matched)
	require.Equal(t, `{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///docs/a","name":"file:///secret/x"}]}}`, string(out))

	security := &policy.Input{Subject: "s", Claims: map[string]any{"groups": []any{"security"}}}
	out, _, err = gateway.ListFilter{Policy: p, Caller: security, Kind: policy.KindResource, ID: "1"}.Message(t.Context(), []byte(in))
	require.NoError(t, err)
	require.Equal(t, in, string(out))
}

// streamOf is an event stream with a progress notification, the list
// answer for request 1 and an event after it, each with other fields.
func streamOf(nl string, answer string) string {
	return ": keep-alive" + nl + nl +
		"event: message" + nl + "id: e1" + nl + `data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}` + nl + nl +
		"id: e2" + nl + "data: " + answer + nl + nl +
		"id: e3" + nl + `data: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"delete_all"}}` + nl + nl
}

const (
	streamAnswer  = `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"},{"name":"delete_all"},{"name":"list"}]}}`
	filteredTools = `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"},{"name":"list"}]}}`
)

func filterStream(t *testing.T, lf gateway.ListFilter, src io.Reader) string {
	t.Helper()
	out, err := io.ReadAll(lf.Stream(t.Context(), io.NopCloser(src)))
	require.NoError(t, err)
	return string(out)
}

func TestAnEventStreamIsFilteredEventByEvent(t *testing.T) {
	p := parsePolicy(t, listPolicy)
	lf := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindTool, ID: "1"}
	for _, nl := range []string{"\n", "\r\n", "\r"} {
		in := streamOf(nl, streamAnswer)
		// The rewritten event keeps its other fields and ends its lines
		// with LF; every other event is passed on byte for byte.
		want := ": keep-alive" + nl + nl +
			"event: message" + nl + "id: e1" + nl + `data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}` + nl + nl +
			"id: e2\ndata: " + filteredTools + "\n\n" +
			"id: e3" + nl + `data: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"delete_all"}}` + nl + nl
		for name, src := range map[string]func() io.Reader{
			"whole":         func() io.Reader { return strings.NewReader(in) },
			"byte by byte":  func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
			"in odd pieces": func() io.Reader { return iotest.HalfReader(strings.NewReader(in)) },
		} {
			t.Run(fmt.Sprintf("%q %s", nl, name), func(t *testing.T) {
				require.Equal(t, want, filterStream(t, lf, src()))
			})
		}
	}
	t.Run("data split over several lines", func(t *testing.T) {
		in := "data: {\"jsonrpc\":\"2.0\",\"id\":1,\ndata:\"result\":{\"tools\":[\ndata: {\"name\":\"delete_all\"},\ndata: {\"name\":\"search\"}]}}\n\n"
		want := "data: {\"jsonrpc\":\"2.0\",\"id\":1,\ndata: \"result\":{\"tools\":[{\"name\":\"search\"}]}}\n\n"
		require.Equal(t, want, filterStream(t, lf, strings.NewReader(in)))
	})
	t.Run("an answer cut by the end of the stream is filtered too", func(t *testing.T) {
		require.Equal(t, "data: "+filteredTools+"\n\n", filterStream(t, lf, strings.NewReader("data: "+streamAnswer)))
	})
	t.Run("another request's answer passes, then the list answer is filtered", func(t *testing.T) {
		other := strings.Replace(streamAnswer, `"id":1`, `"id":2`, 1)
		in := "data: " + other + "\n\n" + "data: " + streamAnswer + "\n\n" + "data: " + streamAnswer + "\n\n"
		want := "data: " + other + "\n\n" + "data: " + filteredTools + "\n\n" + "data: " + streamAnswer + "\n\n"
		require.Equal(t, want, filterStream(t, lf, strings.NewReader(in)), "after the one answer, the stream passes as it is")
	})
}

func TestAnEventStreamThatCannotBeFilteredEndsWithAnError(t *testing.T) {
	p := parsePolicy(t, listPolicy)
	lf := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindTool, ID: "1"}
	errorEvent := "data: " + `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal error: the gateway could not filter the list answer"}}` + "\n\n"
	t.Run("an event that is not JSON", func(t *testing.T) {
		in := "id: 9\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"delete_all\"}]\n\n" +
			"data: " + streamAnswer + "\n\n"
		require.Equal(t, "id: 9\n"+errorEvent, filterStream(t, lf, strings.NewReader(in)),
			"the stream ends: what follows might be the list unfiltered")
	})
	t.Run("an event larger than the bound", func(t *testing.T) {
		if testing.Short() {
			t.Skip("reads a stream larger than the bound")
		}
		head := "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"delete_all\",\"description\":\""
		src := io.MultiReader(strings.NewReader(head), iotest.HalfReader(&zeros{n: gateway.MaxListBytes}), strings.NewReader("\"}]}}\n\n"))
		require.Equal(t, errorEvent, filterStream(t, lf, src))
	})
}

// zeros is n bytes of '0'.
type zeros struct{ n int }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), z.n)
	for i := range n {
		p[i] = '0'
	}
	z.n -= n
	return n, nil
}

func TestAResumedStreamHasEveryListAnswerFiltered(t *testing.T) {
	p := parsePolicy(t, listPolicy)
	lf := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindOther}
	resources := `{"jsonrpc":"2.0","id":5,"result":{"resources":[{"uri":"file:///secret/a"},{"uri":"file:///b"}]}}`
	prompts := `{"jsonrpc":"2.0","id":6,"result":{"prompts":[{"name":"delete_all"}]}}`
	in := "data: " + streamAnswer + "\n\n" + "data: " + resources + "\n\n" + "data: " + prompts + "\n\n" +
		"data: not json\n\n" + "data: " + strings.Replace(streamAnswer, `"id":1`, `"id":9`, 1) + "\n\n"
	want := "data: " + filteredTools + "\n\n" +
		"data: " + `{"jsonrpc":"2.0","id":5,"result":{"resources":[{"uri":"file:///b"}]}}` + "\n\n" +
		"data: " + prompts + "\n\n" +
		"data: " + strings.Replace(filteredTools, `"id":1`, `"id":9`, 1) + "\n\n"
	require.Equal(t, want, filterStream(t, lf, strings.NewReader(in)),
		"prompts are never hidden by this policy; an event that is not JSON is dropped")
}

// bigToolsList is a tools/list answer of n tools of about 500 bytes each,
// a third of them (delete_*) hidden from reader by listPolicy.
func bigToolsList(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":1,"result":{"tools":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		name := fmt.Sprintf("search_%d", i)
		if i%3 == 0 {
			name = fmt.Sprintf("delete_%d", i)
		}
		fmt.Fprintf(&b, `{"name":%q,"title":"Tool %d","description":"Searches the index for documents that match the query and returns the best matches with their scores.",`+
			`"inputSchema":{"type":"object","properties":{"query":{"type":"string","description":"what to look for"},`+
			`"limit":{"type":"integer","minimum":1,"maximum":100,"description":"how many results"},`+
			`"filters":{"type":"array","items":{"type":"string"}}},"required":["query"]},`+
			`"annotations":{"readOnlyHint":true,"openWorldHint":false}}`, name, i)
	}
	b.WriteString(`],"nextCursor":"page-2"}}`)
	return b.Bytes()
}

// BenchmarkFilterToolsList filters a 200-tool list of about 100 kB as the
// gateway does, as a JSON answer (read from the backend's body, filtered,
// its buffer recycled) and as the answer event of an event stream; the
// target is 250 MB/s, about 0.4 ms for the list. On a shared machine the
// wall-clock MB/s falls with the load; cpu-MB/s divides the bytes by the
// CPU time the process used (garbage collection included), which the load
// of other processes does not change.
func BenchmarkFilterToolsList(b *testing.B) {
	p := parsePolicy(b, listPolicy)
	body := bigToolsList(200)
	lf := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindTool, ID: "1"}
	b.Run("json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		var src bytes.Reader
		cpu := startCPU()
		for b.Loop() {
			src.Reset(body)
			out, release, err := lf.JSON(b.Context(), &src, int64(len(body)))
			if err != nil || len(out) == 0 {
				b.Fatal(err)
			}
			release()
		}
		cpu.report(b, len(body))
	})
	b.Run("event-stream", func(b *testing.B) {
		stream := []byte("event: message\ndata: " + string(body) + "\n\n")
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		var src bytes.Reader
		cpu := startCPU()
		for b.Loop() {
			src.Reset(stream)
			filtered := lf.Stream(b.Context(), io.NopCloser(&src))
			n, err := io.Copy(io.Discard, filtered)
			if err != nil || n == 0 {
				b.Fatal(n, err)
			}
			_ = filtered.Close()
		}
		cpu.report(b, len(stream))
	})
}

// cpuClock reads the process's CPU time from /proc/self/stat (user and
// system, in clock ticks of 10 ms); ok is false without procfs.
func cpuClock() (time.Duration, bool) {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// The fields after the command name, which may hold spaces, start
	// after its last ')'; utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

type cpuStart struct {
	at time.Duration
	ok bool
}

func startCPU() cpuStart {
	at, ok := cpuClock()
	return cpuStart{at, ok}
}

// report adds cpu-MB/s, for runs long enough for the clock's 10 ms ticks.
func (c cpuStart) report(b *testing.B, bytesPerOp int) {
	end, ok := cpuClock()
	if !c.ok || !ok || end-c.at < time.Second {
		return
	}
	b.ReportMetric(float64(bytesPerOp)*float64(b.N)/(end-c.at).Seconds()/1e6, "cpu-MB/s")
}

func TestTheBenchmarkListIsTheSizeTheTargetNames(t *testing.T) {
	body := bigToolsList(200)
	require.InDelta(t, 100_000, len(body), 20_000)
	out, ok, err := gateway.ListFilter{Policy: parsePolicy(t, listPolicy), Caller: reader(), Kind: policy.KindTool, ID: "1"}.Message(t.Context(), body)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, json.Valid(out))
	require.Equal(t, 133, strings.Count(string(out), `"name":"search_`))
	require.NotContains(t, string(out), "delete_")
}

// concurrentFilters checks that pooled decoders are not shared.
func TestListsAreFilteredConcurrently(t *testing.T) {
	p := parsePolicy(t, listPolicy)
	body := bigToolsList(30)
	want, _, err := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindTool, ID: "1"}.Message(t.Context(), body)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, _, err := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindTool, ID: "1"}.Message(context.Background(), body)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("concurrent filtering differs: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzFilterList feeds arbitrary answers to the list filter, as a message
// and as an event stream: nothing panics or hangs, a filtered answer is
// valid JSON, and no tool the caller may not call survives in it.
func FuzzFilterList(f *testing.F) {
	for _, s := range []string{
		streamAnswer,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete_all"},{"name":"search","inputSchema":{"type":"object"}}],"nextCursor":"x"}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"n\u0061me":"delete_all"}, 7, {"name":"a","Name":"delete_b"}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"result":{}}`,
		"data: " + streamAnswer + "\r\n\r\ndata: x\n\n",
	} {
		f.Add([]byte(s))
	}
	p := parsePolicy(f, listPolicy)
	lf := gateway.ListFilter{Policy: p, Caller: reader(), Kind: policy.KindTool, ID: "1"}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, matched, err := lf.Message(context.Background(), data)
		if err == nil && matched {
			if !json.Valid(out) {
				t.Fatalf("filtered %q into invalid JSON %q", data, out)
			}
			var msg struct {
				Result struct {
					Tools []json.RawMessage `json:"tools"`
				} `json:"result"`
			}
			if json.Unmarshal(out, &msg) == nil {
				for _, tool := range msg.Result.Tools {
					var entry map[string]any
					if json.Unmarshal(tool, &entry) == nil {
						if name, _ := entry["name"].(string); strings.HasPrefix(name, "delete_") {
							t.Fatalf("a hidden tool survived: %q from %q", out, data)
						}
					}
				}
			}
		}
		_, _ = io.Copy(io.Discard, lf.Stream(context.Background(), io.NopCloser(bytes.NewReader(data))))
	})
}
