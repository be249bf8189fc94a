package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
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

// useCase is what the decorators know about one use case, with its metric
// attribute sets built once so that a call allocates none.
type useCase struct {
	spanName string
	// ok is a ready variadic argument: a one-option call allocates its
	// slice on every request otherwise (the gateway's token check runs
	// this on each proxied request).
	ok     []metric.RecordOption
	byCode map[string]metric.RecordOption // bounded code -> {usecase, oauth.error}
	failed map[string]metric.AddOption    // bounded code -> {step, oauth.error}; nil outside the flow
}

func newUseCase(name, step string) *useCase {
	uc := &useCase{
		spanName: "usecase." + name,
		ok:       []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(keyUseCase.String(name)))},
		byCode:   map[string]metric.RecordOption{},
	}
	if step != "" {
		uc.failed = map[string]metric.AddOption{}
	}
	codes := make([]string, 0, len(knownCodes)+1)
	for _, c := range knownCodes {
		codes = append(codes, string(c))
	}
	for _, c := range append(codes, otherCode) {
		uc.byCode[c] = metric.WithAttributeSet(attribute.NewSet(keyUseCase.String(name), keyError.String(c)))
		if step != "" {
			uc.failed[c] = metric.WithAttributeSet(attribute.NewSet(keyFlowStep.String(step), keyError.String(c)))
		}
	}
	return uc
}

// useCases describe every decorated use case.
type useCases struct {
	register, authorize, consentShow, consentDecide, callback *useCase
	exchange, refresh, revoke, verify, introspect, sweep      *useCase
}

func newUseCases() useCases {
	return useCases{
		register:      newUseCase("RegisterClient", ""),
		authorize:     newUseCase("StartAuthorization", stepAuthorize),
		consentShow:   newUseCase("Consent.Show", stepConsent),
		consentDecide: newUseCase("Consent.Decide", stepConsent),
		callback:      newUseCase("CompleteCallback", stepCallback),
		exchange:      newUseCase("ExchangeToken", stepToken),
		refresh:       newUseCase("RefreshToken", ""),
		revoke:        newUseCase("Revoke", ""),
		verify:        newUseCase("VerifyAccessToken", ""),
		introspect:    newUseCase("Introspect", ""),
		sweep:         newUseCase("SweepExpired", ""),
	}
}

// Grant-type attributes, built once.
var (
	attrGrantCode    = keyGrantType.String(domain.GrantAuthorizationCode)
	attrGrantRefresh = keyGrantType.String(domain.GrantRefreshToken)
)

// startUseCase opens the use case's span.
func (t *Telemetry) startUseCase(ctx context.Context, uc *useCase, attrs ...attribute.KeyValue) (context.Context, trace.Span, time.Time) {
	ctx, span := t.tracer.Start(ctx, uc.spanName, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	return ctx, span, time.Now()
}

// endUseCase records the outcome: the OAuth error code on the span (its
// text never: Error() includes the private cause), status Error only for
// server-side codes, the duration, and a failed flow step.
func (t *Telemetry) endUseCase(ctx context.Context, uc *useCase, span trace.Span, start time.Time, err error) {
	elapsed := time.Since(start).Seconds()
	if err == nil {
		span.End()
		t.inst.useCaseDuration.Record(ctx, elapsed, uc.ok...)
		return
	}
	code := domain.CodeOf(err)
	span.SetAttributes(keyError.String(string(code)))
	if serverSide(code) {
		span.SetStatus(codes.Error, string(code))
	}
	span.End()
	bounded := boundedCode(code)
	t.inst.useCaseDuration.Record(ctx, elapsed, uc.byCode[bounded])
	if uc.failed != nil {
		t.inst.flowsFailed.Add(ctx, 1, uc.failed[bounded])
	}
}

// clientIDAttrs names the client on a span when one is known. The client
// id is public (it travels in URLs); it is never a metric label.
func clientIDAttrs(id string, more ...attribute.KeyValue) []attribute.KeyValue {
	if id == "" {
		return more
	}
	return append(more, keyClientID.String(id))
}

// Application wraps every use case of app in a decorator that opens one
// span per call ("usecase.ExchangeToken") under the request's span, names
// the grant type and client id, records the OAuth error code, and counts
// flows and tokens. Nil use cases stay nil.
func (t *Telemetry) Application(app ports.Application) ports.Application {
	out := app
	if app.RegisterClient != nil {
		out.RegisterClient = registerClient{t: t, next: app.RegisterClient}
	}
	if app.StartAuthorization != nil {
		out.StartAuthorization = startAuthorization{t: t, next: app.StartAuthorization}
	}
	if app.Consent != nil {
		out.Consent = consent{t: t, next: app.Consent}
	}
	if app.CompleteCallback != nil {
		out.CompleteCallback = completeCallback{t: t, next: app.CompleteCallback}
	}
	if app.ExchangeToken != nil {
		out.ExchangeToken = exchangeToken{t: t, next: app.ExchangeToken}
	}
	if app.RefreshToken != nil {
		out.RefreshToken = refreshToken{t: t, next: app.RefreshToken}
	}
	if app.Revoke != nil {
		out.Revoke = revoke{t: t, next: app.Revoke}
	}
	if app.VerifyAccessToken != nil {
		out.VerifyAccessToken = verifyAccessToken{t: t, next: app.VerifyAccessToken}
	}
	if app.Introspect != nil {
		out.Introspect = introspect{t: t, next: app.Introspect}
	}
	if app.SweepExpired != nil {
		out.SweepExpired = sweepExpired{t: t, next: app.SweepExpired}
	}
	return out
}

type registerClient struct {
	t    *Telemetry
	next ports.RegisterClient
}

// Handle implements ports.RegisterClient.
func (d registerClient) Handle(ctx context.Context, cmd ports.RegisterClientCommand) (ports.RegisterClientResult, error) {
	uc := d.t.useCases.register
	ctx, span, start := d.t.startUseCase(ctx, uc)
	res, err := d.next.Handle(ctx, cmd)
	if err == nil {
		span.SetAttributes(keyClientID.String(res.Client.ID))
	}
	d.t.endUseCase(ctx, uc, span, start, err)
	return res, err
}

type startAuthorization struct {
	t    *Telemetry
	next ports.StartAuthorization
}

// Handle implements ports.StartAuthorization.
func (d startAuthorization) Handle(ctx context.Context, cmd ports.StartAuthorizationCommand) (ports.StartAuthorizationResult, error) {
	uc := d.t.useCases.authorize
	ctx, span, start := d.t.startUseCase(ctx, uc, clientIDAttrs(cmd.ClientID)...)
	res, err := d.next.Handle(ctx, cmd)
	if err == nil {
		d.t.inst.flowsStarted.Add(ctx, 1)
	}
	d.t.endUseCase(ctx, uc, span, start, err)
	return res, err
}

type consent struct {
	t    *Telemetry
	next ports.Consent
}

// Show implements ports.Consent.
func (d consent) Show(ctx context.Context, transactionID string) (ports.ConsentView, error) {
	uc := d.t.useCases.consentShow
	ctx, span, start := d.t.startUseCase(ctx, uc)
	view, err := d.next.Show(ctx, transactionID)
	if err == nil && view.ClientID != "" {
		span.SetAttributes(keyClientID.String(view.ClientID))
	}
	d.t.endUseCase(ctx, uc, span, start, err)
	return view, err
}

// Decide implements ports.Consent.
func (d consent) Decide(ctx context.Context, cmd ports.ConsentDecisionCommand) (ports.ConsentDecisionResult, error) {
	uc := d.t.useCases.consentDecide
	ctx, span, start := d.t.startUseCase(ctx, uc, keyConsentApproved.Bool(cmd.Approve))
	res, err := d.next.Decide(ctx, cmd)
	if res.ClientID != "" {
		span.SetAttributes(keyClientID.String(res.ClientID))
	}
	d.t.endUseCase(ctx, uc, span, start, err)
	return res, err
}

type completeCallback struct {
	t    *Telemetry
	next ports.CompleteCallback
}

// Handle implements ports.CompleteCallback. Nothing of the command is
// recorded: it holds the upstream code and state.
func (d completeCallback) Handle(ctx context.Context, cmd ports.CompleteCallbackCommand) (ports.CompleteCallbackResult, error) {
	uc := d.t.useCases.callback
	ctx, span, start := d.t.startUseCase(ctx, uc)
	res, err := d.next.Handle(ctx, cmd)
	d.t.endUseCase(ctx, uc, span, start, err)
	return res, err
}

type exchangeToken struct {
	t    *Telemetry
	next ports.ExchangeToken
}

// Handle implements ports.ExchangeToken: a success completes the flow.
func (d exchangeToken) Handle(ctx context.Context, cmd ports.ExchangeTokenCommand) (ports.TokenResult, error) {
	uc := d.t.useCases.exchange
	ctx, span, start := d.t.startUseCase(ctx, uc, clientIDAttrs(cmd.Client.ClientID, attrGrantCode)...)
	res, err := d.next.Handle(ctx, cmd)
	if err == nil {
		d.t.inst.flowsCompleted.Add(ctx, 1)
		d.t.inst.tokensIssued.Add(ctx, 1)
	}
	d.t.endUseCase(ctx, uc, span, start, err)
	return res, err
}

type refreshToken struct {
	t    *Telemetry
	next ports.RefreshToken
}

// Handle implements ports.RefreshToken. Reuse of a rotated token is
// counted by the store decorator, where it is detected.
func (d refreshToken) Handle(ctx context.Context, cmd ports.RefreshTokenCommand) (ports.TokenResult, error) {
	uc := d.t.useCases.refresh
	ctx, span, start := d.t.startUseCase(ctx, uc, clientIDAttrs(cmd.Client.ClientID, attrGrantRefresh)...)
	res, err := d.next.Handle(ctx, cmd)
	if err == nil {
		d.t.inst.tokensRefreshed.Add(ctx, 1)
	}
	d.t.endUseCase(ctx, uc, span, start, err)
	return res, err
}

type revoke struct {
	t    *Telemetry
	next ports.Revoke
}

// Handle implements ports.Revoke.
func (d revoke) Handle(ctx context.Context, cmd ports.RevokeCommand) error {
	uc := d.t.useCases.revoke
	ctx, span, start := d.t.startUseCase(ctx, uc, clientIDAttrs(cmd.Client.ClientID)...)
	err := d.next.Handle(ctx, cmd)
	if err == nil {
		d.t.inst.tokensRevoked.Add(ctx, 1)
	}
	d.t.endUseCase(ctx, uc, span, start, err)
	return err
}

type verifyAccessToken struct {
	t    *Telemetry
	next ports.VerifyAccessToken
}

// Handle implements ports.VerifyAccessToken. It runs before every proxied
// MCP request, so it opens no span of its own: it annotates the request's
// server span (client id, OAuth error code) and records its duration. A
// child span here cost the gateway ~10% of its throughput. The subject is
// never recorded.
func (d verifyAccessToken) Handle(ctx context.Context, cmd ports.VerifyAccessTokenCommand) (ports.VerifiedAccess, error) {
	uc := d.t.useCases.verify
	start := time.Now()
	res, err := d.next.Handle(ctx, cmd)
	elapsed := time.Since(start).Seconds()
	span := trace.SpanFromContext(ctx)
	if err == nil {
		if res.Token.ClientID != "" && span.IsRecording() {
			span.SetAttributes(keyClientID.String(res.Token.ClientID))
		}
		d.t.inst.useCaseDuration.Record(ctx, elapsed, uc.ok...)
		return res, nil
	}
	code := domain.CodeOf(err)
	span.SetAttributes(keyError.String(string(code)))
	if serverSide(code) {
		span.SetStatus(codes.Error, string(code))
	}
	bounded := boundedCode(code)
	d.t.inst.useCaseDuration.Record(ctx, elapsed, uc.byCode[bounded])
	if uc.failed != nil {
		d.t.inst.flowsFailed.Add(ctx, 1, uc.failed[bounded])
	}
	return res, err
}

type introspect struct {
	t    *Telemetry
	next ports.Introspect
}

// Handle implements ports.Introspect.
func (d introspect) Handle(ctx context.Context, cmd ports.IntrospectCommand) (ports.IntrospectResult, error) {
	uc := d.t.useCases.introspect
	ctx, span, start := d.t.startUseCase(ctx, uc, clientIDAttrs(cmd.Client.ClientID)...)
	res, err := d.next.Handle(ctx, cmd)
	if err == nil {
		span.SetAttributes(keyTokenActive.Bool(res.Active))
	}
	d.t.endUseCase(ctx, uc, span, start, err)
	return res, err
}

type sweepExpired struct {
	t    *Telemetry
	next ports.SweepExpired
}

// Handle implements ports.SweepExpired. The deletions are counted by the
// store decorator's Sweep.
func (d sweepExpired) Handle(ctx context.Context) (int, error) {
	uc := d.t.useCases.sweep
	ctx, span, start := d.t.startUseCase(ctx, uc)
	n, err := d.next.Handle(ctx)
	d.t.endUseCase(ctx, uc, span, start, err)
	return n, err
}
