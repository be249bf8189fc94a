package usecase

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// ConsentHandler renders and decides the consent step.
type ConsentHandler struct {
	clients      *Clients
	transactions ports.TransactionStore
	upstream     upstreamLogin
	clock        ports.Clock
	random       ports.Random
}

var _ ports.Consent = (*ConsentHandler)(nil)

// NewConsent builds the consent step; forwardResource sends the client's
// resource indicator upstream on approval.
func NewConsent(clients *Clients, transactions ports.TransactionStore, provider ports.IdentityProvider,
	clock ports.Clock, random ports.Random, forwardResource bool,
) (*ConsentHandler, error) {
	err := need("NewConsent", dep("clients", clients), dep("transaction store", transactions),
		dep("identity provider", provider), dep("clock", clock), dep("random source", random))
	if err != nil {
		return nil, err
	}
	return &ConsentHandler{
		clients: clients, transactions: transactions,
		upstream: upstreamLogin{provider: provider, clock: clock, random: random, forwardResource: forwardResource},
		clock:    clock, random: random,
	}, nil
}

// Show issues a fresh CSRF token for this render (only the latest render's
// token is accepted) and returns what the page shows.
func (h *ConsentHandler) Show(ctx context.Context, transactionID string) (ports.ConsentView, error) {
	if transactionID == "" {
		return ports.ConsentView{}, errUnknownTransaction(nil)
	}
	csrf := h.random.Token()
	var txn domain.Transaction
	err := h.transactions.UpdateTransaction(ctx, domain.HashToken(transactionID), h.clock.Now().UTC(), func(t *domain.Transaction) error {
		if t.Approved {
			return domain.ErrNotFound
		}
		t.CSRFHash = domain.HashToken(csrf)
		txn = *t
		return nil
	})
	if errors.Is(err, domain.ErrNotFound) {
		return ports.ConsentView{}, errUnknownTransaction(err)
	}
	if err != nil {
		return ports.ConsentView{}, serverError(fmt.Errorf("consent: update transaction: %w", err)).WithNoRedirect()
	}
	client, err := h.clients.lookup(ctx, txn.ClientID)
	if e, ok := domain.AsError(err); ok {
		// The client's metadata document stopped being usable mid-flow.
		return ports.ConsentView{}, e.WithNoRedirect()
	}
	if err != nil {
		// A client deleted mid-flow: nothing sensible to show.
		return ports.ConsentView{}, errUnknownTransaction(err)
	}
	documentHost := ""
	if domain.IsClientIDURL(client.ID) {
		// Anyone can publish a document with any client_name: the host
		// that serves it is the one thing about the client that is proven,
		// so the page shows it.
		if u, err := url.Parse(client.ID); err == nil {
			documentHost = u.Host
		}
	}
	host := ""
	if u, err := url.Parse(txn.RedirectURI); err == nil {
		host = u.Host
		if host == "" {
			host = u.Scheme + ":"
		}
	}
	return ports.ConsentView{
		TransactionID: transactionID,
		CSRFToken:     csrf,
		ClientID:      client.ID,
		ClientName:    client.DisplayName(),
		ClientURI:     client.ClientURI,
		DocumentHost:  documentHost,
		RedirectURI:   txn.RedirectURI,
		RedirectHost:  host,
		Scopes:        txn.Scopes,
		Resource:      txn.Resource,
		ExpiresAt:     txn.ExpiresAt,
	}, nil
}

// Decide consumes the transaction (single use, whatever the answer) after
// checking the CSRF token of the latest render. Approval moves it under a
// fresh upstream state; denial sends access_denied to the client.
func (h *ConsentHandler) Decide(ctx context.Context, cmd ports.ConsentDecisionCommand) (ports.ConsentDecisionResult, error) {
	var res ports.ConsentDecisionResult
	if cmd.TransactionID == "" || cmd.CSRFToken == "" {
		return res, domain.ErrInvalidRequest("the consent form is incomplete; start again from your application").WithNoRedirect()
	}
	now := h.clock.Now().UTC()
	checkCSRF := func(t domain.Transaction) error {
		if t.Approved || t.CSRFHash == "" || !domain.EqualHash(cmd.CSRFToken, t.CSRFHash) {
			return domain.ErrAccessDenied("the consent form was not valid; start again from your application").WithNoRedirect()
		}
		return nil
	}
	id := domain.HashToken(cmd.TransactionID)
	if !cmd.Approve {
		txn, err := h.transactions.ConsumeTransaction(ctx, id, now, checkCSRF)
		if err != nil {
			return res, consentStoreError(err)
		}
		res.RedirectURI, res.State, res.ClientID = txn.RedirectURI, txn.State, txn.ClientID
		return res, domain.ErrAccessDenied("the user denied the request")
	}
	var approved domain.Transaction
	var up ports.UpstreamRedirect
	_, err := h.transactions.ReplaceTransaction(ctx, id, now, func(t domain.Transaction) (domain.Transaction, error) {
		if err := checkCSRF(t); err != nil {
			return domain.Transaction{}, err
		}
		var next domain.Transaction
		// approve only computes here; the store saves next atomically with
		// the consumption of t. The closure may run more than once, which is
		// harmless: the last run's values win.
		u, err := h.upstream.approve(t, func(n domain.Transaction) error { next = n; return nil })
		if err != nil {
			return domain.Transaction{}, err
		}
		up, approved = u, t
		return next, nil
	})
	if err != nil {
		return res, consentStoreError(err)
	}
	res.Upstream = &up
	res.ClientID, res.Scopes = approved.ClientID, approved.Scopes
	return res, nil
}

func consentStoreError(err error) error {
	if e, ok := domain.AsError(err); ok {
		return e
	}
	if errors.Is(err, domain.ErrNotFound) {
		return errUnknownTransaction(err)
	}
	return serverError(fmt.Errorf("consent: %w", err)).WithNoRedirect()
}
