package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/oidcproxy/oidcproxy/domain"
)

// Revoke revokes the upstream grant at the IdP's RFC 7009
// revocation_endpoint: the refresh token when there is one (revoking it
// ends the whole upstream grant at most IdPs), else the access token; if the
// IdP answers unsupported_token_type for the refresh token, the access token
// is tried. The client authenticates as at the token endpoint.
//
// When discovery names no revocation endpoint there is nothing to do and
// Revoke returns nil: the upstream tokens are still deleted with the grant,
// and they expire at the IdP on their own.
//
// Errors: temporarily_unavailable when the IdP cannot be reached or fails
// (5xx, 429); server_error when it refuses the request, which means our
// client configuration is wrong.
func (p *Provider) Revoke(ctx context.Context, tokens domain.UpstreamTokens) error {
	if p.doc.RevocationEndpoint == "" {
		return nil
	}
	var err error
	switch {
	case tokens.RefreshToken != "":
		err = p.revoke(ctx, tokens.RefreshToken, "refresh_token")
		if errors.Is(err, errUnsupportedTokenType) && tokens.AccessToken != "" {
			err = p.revoke(ctx, tokens.AccessToken, "access_token")
		}
	case tokens.AccessToken != "":
		err = p.revoke(ctx, tokens.AccessToken, "access_token")
	}
	if errors.Is(err, errUnsupportedTokenType) {
		return domain.ErrServerError(fmt.Errorf("oidc: revoke: %w", err))
	}
	return err
}

// errUnsupportedTokenType is the IdP's RFC 7009 2.2.1 answer for a token
// type it cannot revoke.
var errUnsupportedTokenType = errors.New("identity provider answered unsupported_token_type")

func (p *Provider) revoke(ctx context.Context, token, hint string) error {
	ctx, cancel := context.WithTimeout(ctx, p.settings.Timeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	switch p.settings.TokenEndpointAuthMethod {
	case AuthMethodClientSecretPost:
		form.Set("client_id", p.settings.ClientID)
		form.Set("client_secret", p.settings.ClientSecret)
	case AuthMethodNone:
		form.Set("client_id", p.settings.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.doc.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return domain.ErrServerError(fmt.Errorf("oidc: revoke: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.settings.TokenEndpointAuthMethod == AuthMethodClientSecretBasic {
		// RFC 6749 2.3.1: the credentials are form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(p.settings.ClientID), url.QueryEscape(p.settings.ClientSecret))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return domain.ErrTemporarilyUnavailable("identity provider unavailable", fmt.Errorf("oidc: revoke: %w", err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var oauthErr struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &oauthErr) // a non-JSON error body leaves the fields empty
	cause := fmt.Errorf("oidc: revoke: revocation endpoint answered HTTP %d, error %q, description %q",
		resp.StatusCode, truncate(oauthErr.Error, 64), truncate(oauthErr.Description, maxDescriptionEcho))
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests:
		return domain.ErrTemporarilyUnavailable("identity provider unavailable", cause)
	case oauthErr.Error == "unsupported_token_type":
		return errUnsupportedTokenType
	}
	return domain.ErrServerError(cause)
}
