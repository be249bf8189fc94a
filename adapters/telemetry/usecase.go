package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The steps of an authorization flow, from /authorize to /token: the
// oidcproxy.flow.step label of oidcproxy.flows.failed.
const (
	stepAuthorize = "authorize"
	stepConsent   = "consent"
	stepCallback  = "callback"
	stepToken     = "token"
)

// newUseCaseFamily describes the use-case decorators: a span named
// "usecase.<name>", the OAuth error code on it (status Error only for
// server-side codes), the duration per use case and bounded error code, and
// for the flow's steps a failure counted per step and code.
func (t *Telemetry) newUseCaseFamily() *family {
	labels := []string{""} // success
	for _, c := range knownCodes {
		labels = append(labels, string(c))
	}
	labels = append(labels, otherCode)
	return &family{
		t:        t,
		prefix:   "usecase.",
		duration: t.inst.useCaseDuration,
		classify: func(err error) (string, attribute.KeyValue) {
			if err == nil {
				return "", attribute.KeyValue{}
			}
			// The code, never the text: Error() includes the private cause.
			code := domain.CodeOf(err)
			return boundedCode(code), keyError.String(string(code))
		},
		labels: labels,
		fault: func(label string) bool {
			return serverSide(domain.ErrorCode(label))
		},
		metricAttrs: func(name, label string) []attribute.KeyValue {
			if label == "" {
				return []attribute.KeyValue{keyUseCase.String(name)}
			}
			return []attribute.KeyValue{keyUseCase.String(name), keyError.String(label)}
		},
		failedAttrs: func(step, label string) []attribute.KeyValue {
			if label == "" {
				return nil
			}
			return []attribute.KeyValue{keyFlowStep.String(step), keyError.String(label)}
		},
	}
}

// handler is the shape of most use cases: a command in, a result out.
type handler[C, R any] interface {
	Handle(ctx context.Context, cmd C) (R, error)
}

// decorator observes a use case of the common shape. attrs, when set, name
// the command on the span (never a secret of it); done, when set, runs
// after the call inside the span, to count what the result means and name
// the result on the span (trace.SpanFromContext(ctx)).
type decorator[C, R any] struct {
	op    *operation
	next  handler[C, R]
	attrs func(C) []attribute.KeyValue
	done  func(ctx context.Context, res R, err error)
}

// Handle implements the decorated use case.
func (d decorator[C, R]) Handle(ctx context.Context, cmd C) (R, error) {
	var attrs []attribute.KeyValue
	if d.attrs != nil {
		attrs = d.attrs(cmd)
	}
	return observe(ctx, d.op, func(ctx context.Context) (R, error) {
		res, err := d.next.Handle(ctx, cmd)
		if d.done != nil {
			d.done(ctx, res, err)
		}
		return res, err
	}, attrs...)
}

// decorate wraps next (nil stays nil) as the use case name; step, when
// set, is the flow step whose failures it counts.
func decorate[C, R any](t *Telemetry, next handler[C, R], name, step string,
	attrs func(C) []attribute.KeyValue, done func(context.Context, R, error),
) handler[C, R] {
	if next == nil {
		return nil
	}
	return decorator[C, R]{op: t.useCases.op(name, ownSpan, step), next: next, attrs: attrs, done: done}
}

// onSuccess runs count after a successful call.
func onSuccess[R any](count func(context.Context)) func(context.Context, R, error) {
	return func(ctx context.Context, _ R, err error) {
		if err == nil {
			count(ctx)
		}
	}
}

// clientID names the client on a span when one is known. The client id is
// public (it travels in URLs); it is never a metric label.
func clientID(id string, more ...attribute.KeyValue) []attribute.KeyValue {
	if id == "" {
		return more
	}
	return append(more, keyClientID.String(id))
}

// nameClient names the client on the current span, if it records.
func nameClient(ctx context.Context, id string) {
	if span := trace.SpanFromContext(ctx); id != "" && span.IsRecording() {
		span.SetAttributes(keyClientID.String(id))
	}
}

// Grant-type attributes, built once.
var (
	attrGrantCode        = keyGrantType.String(domain.GrantAuthorizationCode)
	attrGrantRefresh     = keyGrantType.String(domain.GrantRefreshToken)
	attrGrantCredentials = keyGrantType.String(domain.GrantClientCredentials)
	attrGrantJWTBearer   = keyGrantType.String(domain.GrantJWTBearer)
)

// Application wraps every use case of app in a decorator that opens one
// span per call ("usecase.ExchangeToken") under the request's span, names
// the grant type and client id, records the OAuth error code, and counts
// flows and tokens. Nil use cases stay nil. Nothing of a command is
// recorded beyond the client id, the grant type and the consent decision:
// commands carry codes, verifiers, tokens and states.
func (t *Telemetry) Application(app ports.Application) ports.Application {
	in := t.inst
	out := app
	out.RegisterClient = decorate(t, app.RegisterClient, "RegisterClient", "", nil,
		func(ctx context.Context, res ports.RegisterClientResult, err error) {
			if err == nil {
				nameClient(ctx, res.Client.ID)
			}
		})
	out.StartAuthorization = decorate(t, app.StartAuthorization, "StartAuthorization", stepAuthorize,
		func(cmd ports.StartAuthorizationCommand) []attribute.KeyValue { return clientID(cmd.ClientID) },
		onSuccess[ports.StartAuthorizationResult](func(ctx context.Context) { in.flowsStarted.Add(ctx, 1) }))
	out.CompleteCallback = decorate(t, app.CompleteCallback, "CompleteCallback", stepCallback, nil, nil)
	out.ExchangeToken = decorate(t, app.ExchangeToken, "ExchangeToken", stepToken,
		func(cmd ports.ExchangeTokenCommand) []attribute.KeyValue {
			return clientID(cmd.Client.ClientID, attrGrantCode)
		},
		onSuccess[ports.TokenResult](func(ctx context.Context) {
			// A redeemed code completes the flow.
			in.flowsCompleted.Add(ctx, 1)
			in.tokensIssued.Add(ctx, 1)
		}))
	// Reuse of a rotated refresh token is counted by the store decorator,
	// where it is detected.
	out.RefreshToken = decorate(t, app.RefreshToken, "RefreshToken", "",
		func(cmd ports.RefreshTokenCommand) []attribute.KeyValue {
			return clientID(cmd.Client.ClientID, attrGrantRefresh)
		},
		onSuccess[ports.TokenResult](func(ctx context.Context) { in.tokensRefreshed.Add(ctx, 1) }))
	// The direct grants issue tokens without a flow: counted as issued.
	out.ClientCredentials = decorate(t, app.ClientCredentials, "ClientCredentials", "",
		func(cmd ports.ClientCredentialsCommand) []attribute.KeyValue {
			return clientID(cmd.Client.ClientID, attrGrantCredentials)
		},
		func(ctx context.Context, res ports.TokenResult, err error) {
			if err == nil {
				nameClient(ctx, res.ClientID)
				in.tokensIssued.Add(ctx, 1)
			}
		})
	out.JWTBearer = decorate(t, app.JWTBearer, "JWTBearer", "",
		func(cmd ports.JWTBearerCommand) []attribute.KeyValue {
			return clientID(cmd.Client.ClientID, attrGrantJWTBearer)
		},
		func(ctx context.Context, res ports.TokenResult, err error) {
			if err == nil {
				nameClient(ctx, res.ClientID)
				in.tokensIssued.Add(ctx, 1)
			}
		})
	out.Introspect = decorate(t, app.Introspect, "Introspect", "",
		func(cmd ports.IntrospectCommand) []attribute.KeyValue { return clientID(cmd.Client.ClientID) },
		func(ctx context.Context, res ports.IntrospectResult, err error) {
			if span := trace.SpanFromContext(ctx); err == nil && span.IsRecording() {
				span.SetAttributes(keyTokenActive.Bool(res.Active))
			}
		})
	if app.VerifyAccessToken != nil {
		// It runs before every proxied MCP request, so it opens no span of
		// its own: it names the client and the OAuth error code on the
		// request's span and records its duration (a child span cost the
		// gateway ~10% of its throughput). The subject is never recorded.
		out.VerifyAccessToken = decorator[ports.VerifyAccessTokenCommand, ports.VerifiedAccess]{
			op: t.useCases.op("VerifyAccessToken", parentSpan, ""), next: app.VerifyAccessToken,
			done: func(ctx context.Context, res ports.VerifiedAccess, err error) {
				if err == nil {
					nameClient(ctx, res.Token.ClientID)
				}
			},
		}
	}
	if app.Consent != nil {
		out.Consent = consent{
			show: t.useCases.op("Consent.Show", ownSpan, stepConsent), decide: t.useCases.op("Consent.Decide", ownSpan, stepConsent),
			next: app.Consent,
		}
	}
	if app.Revoke != nil {
		out.Revoke = revoke{op: t.useCases.op("Revoke", ownSpan, ""), next: app.Revoke}
	}
	if app.SweepExpired != nil {
		// The deletions are counted by the store decorator's Sweep.
		out.SweepExpired = sweepExpired{op: t.useCases.op("SweepExpired", ownSpan, ""), next: app.SweepExpired}
	}
	return out
}

// Admin wraps every operator use case in a decorator that opens one span
// per call ("usecase.RevokeGrants") and records its duration and error
// code, as Application does. Nothing of a command is recorded: it names
// users and clients, which the audit log records instead.
func (t *Telemetry) Admin(admin ports.Admin) ports.Admin {
	return ports.Admin{
		ListClients:  decorate(t, admin.ListClients, "ListClients", "", nil, nil),
		CreateClient: decorate(t, admin.CreateClient, "CreateClient", "", nil, nil),
		DeleteClient: decorate(t, admin.DeleteClient, "DeleteClient", "", nil, nil),
		ListGrants:   decorate(t, admin.ListGrants, "ListGrants", "", nil, nil),
		RevokeGrants: decorate(t, admin.RevokeGrants, "RevokeGrants", "", nil, nil),
	}
}

// The use cases of other shapes: each method is one call of observe.

type consent struct {
	show, decide *operation
	next         ports.Consent
}

// Show implements ports.Consent.
func (d consent) Show(ctx context.Context, transactionID string) (ports.ConsentView, error) {
	return observe(ctx, d.show, func(ctx context.Context) (ports.ConsentView, error) {
		view, err := d.next.Show(ctx, transactionID)
		if err == nil {
			nameClient(ctx, view.ClientID)
		}
		return view, err
	})
}

// Decide implements ports.Consent.
func (d consent) Decide(ctx context.Context, cmd ports.ConsentDecisionCommand) (ports.ConsentDecisionResult, error) {
	return observe(ctx, d.decide, func(ctx context.Context) (ports.ConsentDecisionResult, error) {
		res, err := d.next.Decide(ctx, cmd)
		nameClient(ctx, res.ClientID)
		return res, err
	}, keyConsentApproved.Bool(cmd.Approve))
}

type revoke struct {
	op   *operation
	next ports.Revoke
}

// Handle implements ports.Revoke.
func (d revoke) Handle(ctx context.Context, cmd ports.RevokeCommand) error {
	_, err := observe(ctx, d.op, func(ctx context.Context) (struct{}, error) {
		err := d.next.Handle(ctx, cmd)
		if err == nil {
			d.op.t.inst.tokensRevoked.Add(ctx, 1)
		}
		return struct{}{}, err
	}, clientID(cmd.Client.ClientID)...)
	return err
}

type sweepExpired struct {
	op   *operation
	next ports.SweepExpired
}

// Handle implements ports.SweepExpired.
func (d sweepExpired) Handle(ctx context.Context) (int, error) {
	return observe(ctx, d.op, d.next.Handle)
}
