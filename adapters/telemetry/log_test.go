package telemetry_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLogHandlerStampsTraceAndSpanIDsOnRecordsInsideASpan(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	logger := slog.New(f.tel.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")

	ctx, span := f.tel.TracerProvider().Tracer("test").Start(t.Context(), "work")
	logger.InfoContext(ctx, "inside")
	span.End()
	logger.InfoContext(t.Context(), "outside")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	var inside, outside map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &inside))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &outside))

	require.Equal(t, span.SpanContext().TraceID().String(), inside["trace_id"])
	require.Equal(t, span.SpanContext().SpanID().String(), inside["span_id"])
	require.Equal(t, "test", inside["component"], "WithAttrs still applies")
	require.NotContains(t, outside, "trace_id")
	require.NotContains(t, outside, "span_id")
}

func TestLogHandlerDefersLevelsToTheWrappedHandler(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	logger := slog.New(f.tel.LogHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	logger.Info("dropped")
	logger.WithGroup("g").Warn("kept", "k", "v")
	require.NotContains(t, buf.String(), "dropped")
	require.Contains(t, buf.String(), "g.k=v")
}
