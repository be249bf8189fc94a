package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// keyRateLimit names the limit that refused a request.
const keyRateLimit = attribute.Key("oidcproxy.ratelimit.limit")

// rateLimitNames are the limits' names, the only values of keyRateLimit
// besides otherCode, so that the label stays bounded.
var rateLimitNames = []string{
	"register", "cimd", "authorize", "consent", "callback", "token", "revoke", "introspect", "gateway",
}

// RateLimitRefused returns the function that counts a request a rate
// limit refused (oidcproxy.ratelimit.refused), by the limit's name; a name
// it does not know counts as "other". Each count allocates nothing: the
// attribute sets are built here, once.
func (t *Telemetry) RateLimitRefused() func(ctx context.Context, limit string) {
	sets := make(map[string]metric.AddOption, len(rateLimitNames)+1)
	for _, name := range append(rateLimitNames, otherCode) {
		sets[name] = metric.WithAttributeSet(attribute.NewSet(keyRateLimit.String(name)))
	}
	counter := t.inst.rateLimited
	return func(ctx context.Context, limit string) {
		set, ok := sets[limit]
		if !ok {
			set = sets[otherCode]
		}
		counter.Add(ctx, 1, set)
	}
}
