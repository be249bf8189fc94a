package bench_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// BenchmarkTelemetryCost runs two Apps side by side, one exporting every
// span and one with telemetry off, in interleaved slices, alternating
// which goes first:
//
//	go test -run '^$' -bench 'TelemetryCost' -benchtime 1x -count 3 -v ./bench
const (
	// telemetryCostTarget is the bound telemetry is held to: with it on,
	// an App keeps at least this share of its throughput with it off.
	telemetryCostTarget = 0.90
)

// spanSink is a local OTLP/HTTP trace receiver: it accepts POST
// /v1/traces, counts the spans and answers 200, so that the exporter does
// all of its work (batching, protobuf encoding, HTTP) against a collector
// that never slows it down. Counting is how the benchmark tells a cheap
// exporter from one that drops spans under load (the batch processor's
// queue is bounded).
type spanSink struct {
	URL   string
	spans atomic.Int64
	// verify makes the sink also decode every export with the generated
	// OTLP types and compare the counts (the smoke test sets it; the
	// benchmarks do not, since the sink's CPU is charged to the side with
	// telemetry on).
	verify bool
	// mismatch records the first export whose counts disagreed.
	mismatch atomic.Pointer[string]
}

// newSpanSink starts a sink on loopback until the test's cleanup.
func newSpanSink(tb testing.TB) *spanSink {
	tb.Helper()
	s := &spanSink{}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *spanSink) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	n, err := countSpans(data)
	if err != nil {
		http.Error(w, "not an ExportTraceServiceRequest", http.StatusBadRequest)
		return
	}
	if s.verify {
		var req coltracepb.ExportTraceServiceRequest
		var want int64
		if err := proto.Unmarshal(data, &req); err == nil {
			for _, rs := range req.GetResourceSpans() {
				for _, ss := range rs.GetScopeSpans() {
					want += int64(len(ss.GetSpans()))
				}
			}
		}
		if want != n {
			msg := fmt.Sprintf("counted %d spans in an export that decodes to %d", n, want)
			s.mismatch.CompareAndSwap(nil, &msg)
		}
	}
	s.spans.Add(n)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// OTLP field numbers on the way from an export request to its spans
// (opentelemetry-proto: collector/trace/v1 and trace/v1).
const (
	fieldResourceSpans protowire.Number = 1 // ExportTraceServiceRequest.resource_spans
	fieldScopeSpans    protowire.Number = 2 // ResourceSpans.scope_spans
	fieldSpans         protowire.Number = 2 // ScopeSpans.spans
)

// countSpans counts the spans of an encoded ExportTraceServiceRequest by
// walking its wire format with protowire, without decoding the spans: a
// full decode would cost the side with telemetry on a few microseconds
// per request that no real collector charges to the proxy.
func countSpans(data []byte) (int64, error) {
	var n int64
	err := eachField(data, fieldResourceSpans, func(rs []byte) error {
		return eachField(rs, fieldScopeSpans, func(ss []byte) error {
			return eachField(ss, fieldSpans, func([]byte) error {
				n++
				return nil
			})
		})
	})
	return n, err
}

// eachField calls fn with the payload of every length-delimited field
// number want of the message msg, skipping every other field.
func eachField(msg []byte, want protowire.Number, fn func([]byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		if num == want && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := fn(v); err != nil {
				return err
			}
			msg = msg[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, msg)
		if m < 0 {
			return protowire.ParseError(m)
		}
		msg = msg[m:]
	}
	return nil
}

// Mismatch is the first disagreement a verifying sink saw, or "".
func (s *spanSink) Mismatch() string {
	if m := s.mismatch.Load(); m != nil {
		return *m
	}
	return ""
}

// Spans is how many spans the sink has received.
func (s *spanSink) Spans() int64 { return s.spans.Load() }

// telemetryOn is the OTEL_* environment of an App that samples every
// request and exports every span over OTLP/HTTP protobuf to sink.
func telemetryOn(sink *spanSink) map[string]string {
	return map[string]string{
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_TRACES_SAMPLER":         "always_on",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL,
	}
}

// telemetryOff is the OTEL_* environment of an App without telemetry. The
// harness makes it that App's Options.Disabled rather than process
// environment: the App with telemetry on, beside it, exports because of
// the variables telemetryOn puts in the process environment.
var telemetryOff = map[string]string{"OTEL_SDK_DISABLED": "true"}

// reportCost reports the on and off sides under unit ("good/s", "req/s"),
// their ratio, and the spans the sink received per request of the on
// side during the timed part.
func reportCost(b *testing.B, unit string, on, off sideStats, spans int64) {
	b.Helper()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(on.PerSec, "on-"+unit)
	b.ReportMetric(off.PerSec, "off-"+unit)
	b.ReportMetric(on.P50, "on-p50-ms")
	b.ReportMetric(off.P50, "off-p50-ms")
	b.ReportMetric(on.P99, "on-p99-ms")
	b.ReportMetric(off.P99, "off-p99-ms")
	if on.CPUPerRequest > 0 && off.CPUPerRequest > 0 {
		// The exporter works in the background: part of a slice's export
		// may run during the next slice, of either side.
		b.ReportMetric(on.CPUPerRequest, "on-cpu-µs/req")
		b.ReportMetric(off.CPUPerRequest, "off-cpu-µs/req")
	}
	if on.Requests > 0 {
		// The batch processor exports in batches, so the last partial batch
		// of the run may arrive after the timer: a floor, not an exact
		// count, but a collapse here means spans were dropped.
		b.ReportMetric(float64(spans)/float64(on.Requests), "spans/req")
	}
	if off.PerSec > 0 {
		b.ReportMetric(on.PerSec/off.PerSec, "on/off")
		logVerdict(b, fmt.Sprintf("telemetry on ÷ off: %.0f ÷ %.0f %s", on.PerSec, off.PerSec, unit),
			on.PerSec/off.PerSec, telemetryCostTarget, true)
	}
}

// BenchmarkTelemetryCost measures what exporting every span costs: an App
// with telemetry on (OTEL_TRACES_SAMPLER=always_on, OTLP http/protobuf to
// a local sink, metrics recorded) against an App with telemetry off
// (OTEL_SDK_DISABLED=true), both on production fsync stores, in
// interleaved slices.
//
//   - authorization_code: 50 clients redeeming seeded codes at /token
//     (tokenSlices slices of tokenSliceRequests exchanges per side).
//   - gateway: 50 clients posting tools/call through each App's gateway to
//     one shared backend, as BenchmarkGateway does.
//
// Metrics: on- and off- throughput (good/s or req/s), p50 and p99 in
// milliseconds, on/off (target ≥ 0.90), on- and off-cpu-µs/req (process
// CPU per request, see sideStats), and spans/req, the spans the sink
// received per request of the on side (a floor: the last batch may land
// after the timer). Run it with -benchtime 1x.
func BenchmarkTelemetryCost(b *testing.B) {
	b.Run("authorization_code", func(b *testing.B) {
		sink := newSpanSink(b)
		transport := newTransport()
		b.Cleanup(transport.CloseIdleConnections)
		client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
		on := newTokenSide(b, sideCredentials(b), client, tokenSideOptions{telemetryEnv: telemetryOn(sink)})
		off := newTokenSide(b, sideCredentials(b), client, tokenSideOptions{telemetryEnv: telemetryOff})
		// The warm-up exchanges export spans too: count from the timed part.
		var spans0 int64
		st := runSides(b, tokenSlices, []side{on.side(b, "on"), off.side(b, "off")},
			func() { spans0 = sink.Spans() })
		reportCost(b, "good/s", st[0], st[1], sink.Spans()-spans0)
	})

	b.Run("gateway", func(b *testing.B) {
		sink := newSpanSink(b)
		backend := newMCPBackend(b)
		pOn, onTokens := newGatewayProxy(b, backend.URL, telemetryOn(sink))
		pOff, offTokens := newGatewayProxy(b, backend.URL, telemetryOff)
		transport := newTransport()
		b.Cleanup(transport.CloseIdleConnections)
		client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
		body, want := toolsCallRequest(), int64(len(toolsCallResult()))
		on := mcpLoad{client: client, url: pOn.MCPURL(), tokens: onTokens, body: body, wantBytes: want}
		off := mcpLoad{client: client, url: pOff.MCPURL(), tokens: offTokens, body: body, wantBytes: want}
		// The warm-up slices export spans too: count from the timed part.
		var spans0 int64
		st := runSides(b, gatewaySlices, []side{mcpSide(b, "on", on), mcpSide(b, "off", off)},
			func() { spans0 = sink.Spans() })
		reportCost(b, "req/s", st[0], st[1], sink.Spans()-spans0)
	})
}
