package telemetry

import (
	"context"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The gateway's policy decisions and filtered list entries. Like the byte
// totals, they are atomic adds on the request path that the SDK reads at
// collection: every gateway request is decided, and a synchronous counter
// there would cost microseconds a request.
//
// The labels are bounded: the method is one of the MCP methods below (any
// other method is "other", any notification "notifications/*"), the
// decision one of three. The tool, prompt or resource name is never a
// label: it is the client's input, and a client calling made-up names
// would create series without end. The audit log names what was refused.

const (
	keyMCPMethod = attribute.Key("mcp.method.name")
	keyDecision  = attribute.Key("oidcproxy.decision")
)

// mcpMethods are the method label's values, besides the two catch-alls.
var mcpMethods = []string{
	"initialize", "ping", "server/discover", "subscriptions/listen",
	"tools/list", "tools/call", "prompts/list", "prompts/get",
	"resources/list", "resources/templates/list", "resources/read", "resources/subscribe", "resources/unsubscribe",
	"completion/complete", "logging/setLevel",
	"tasks/get", "tasks/list", "tasks/result", "tasks/cancel",
}

// The catch-all method labels.
const (
	methodNotification = "notifications/*"
	methodOther        = "other"
)

// decisions are the decision label's values, as the gateway passes them.
var decisions = []string{"allowed", "insufficient_scope", "forbidden"}

// listMethods are the methods whose answers the gateway filters.
var listMethods = []string{"tools/list", "prompts/list", "resources/list"}

// methodSlots is the number of method label values.
var methodSlots = len(mcpMethods) + 2

// policyCounters are the gateway's decision and filtering counts.
type policyCounters struct {
	// decided is indexed by method slot, then decision.
	decided [][3]atomic.Int64
	hidden  [3]atomic.Int64
}

// methodSlot maps a method onto its label's index.
func methodSlot(method string) int {
	for i, m := range mcpMethods {
		if m == method {
			return i
		}
	}
	if strings.HasPrefix(method, "notifications/") {
		return len(mcpMethods)
	}
	return len(mcpMethods) + 1
}

func methodLabel(slot int) string {
	switch {
	case slot < len(mcpMethods):
		return mcpMethods[slot]
	case slot == len(mcpMethods):
		return methodNotification
	}
	return methodOther
}

// registerPolicyCounters creates the observable counters of pc.
func registerPolicyCounters(m metric.Meter, pc *policyCounters) error {
	pc.decided = make([][3]atomic.Int64, methodSlots)
	decidedAttrs := make([][3]metric.ObserveOption, methodSlots)
	for slot := range decidedAttrs {
		for d, decision := range decisions {
			decidedAttrs[slot][d] = metric.WithAttributeSet(attribute.NewSet(
				keyMCPMethod.String(methodLabel(slot)), keyDecision.String(decision)))
		}
	}
	_, err := m.Int64ObservableCounter("oidcproxy.gateway.decisions",
		metric.WithDescription("Gateway requests the access policy decided, by MCP method and decision (allowed, insufficient_scope, forbidden)."),
		metric.WithUnit("{request}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for slot := range pc.decided {
				for d := range decisions {
					// Only the series that happened: 60-odd zero series
					// would bury the few that matter.
					if n := pc.decided[slot][d].Load(); n > 0 {
						o.Observe(n, decidedAttrs[slot][d])
					}
				}
			}
			return nil
		}))
	if err != nil {
		return err
	}
	var hiddenAttrs [3]metric.ObserveOption
	for i, method := range listMethods {
		hiddenAttrs[i] = metric.WithAttributeSet(attribute.NewSet(keyMCPMethod.String(method)))
	}
	_, err = m.Int64ObservableCounter("oidcproxy.gateway.list_entries_hidden",
		metric.WithDescription("Entries the gateway left out of tools/list, prompts/list and resources/list answers because the caller may not use them."),
		metric.WithUnit("{entry}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for i := range listMethods {
				o.Observe(pc.hidden[i].Load(), hiddenAttrs[i])
			}
			return nil
		}))
	return err
}

// Decided counts one decision of the access policy on a gateway request;
// outcome is one of the gateway's Decision* values.
func (m GatewayMetrics) Decided(_ context.Context, method, outcome string) {
	if m.in == nil {
		return
	}
	for d, decision := range decisions {
		if decision == outcome {
			m.in.policy.decided[methodSlot(method)][d].Add(1)
			return
		}
	}
}

// Hidden counts n entries left out of the answer to a list request.
func (m GatewayMetrics) Hidden(_ context.Context, method string, n int) {
	if m.in == nil || n <= 0 {
		return
	}
	for i, lm := range listMethods {
		if lm == method {
			m.in.policy.hidden[i].Add(int64(n))
			return
		}
	}
}
