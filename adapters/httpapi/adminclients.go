package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The admin listener's client and grant endpoints, behind the same guard
// as /keys (adminOnly), for `oidcproxy clients` and `oidcproxy grants`
// while a server runs:
//
//	GET    /clients[?after=&limit=]                  one page of clients
//	POST   /clients                                  create a machine client (CreateClientRequest)
//	DELETE /clients/{client_id}                      delete a client and revoke its grants
//	GET    /grants[?user=&client=&after=&limit=]     one page of live grants
//	POST   /grants/revoke                            revoke grants (RevokeGrantsRequest)
//
// Going through the running server matters for revocation: its grant
// cache, which the gateway reads, forgets a revoked grant as the
// revocation commits. Errors are OAuth error documents; an unknown client
// is 404.

// Audit events of the admin endpoints (oauthhttp.Audit's shape; the remote
// address is the operator's).
const (
	AuditClientCreated = "admin_client_created"
	AuditClientDeleted = "admin_client_deleted"
	AuditGrantsRevoked = "admin_grants_revoked"
)

// AdminClient is a client as the admin API and `oidcproxy clients list`
// show it: never its secret or its keys.
type AdminClient struct {
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name,omitempty"`
	// Operator: an operator created the client (a machine client);
	// otherwise it registered itself at /register.
	Operator                bool      `json:"operator"`
	TokenEndpointAuthMethod string    `json:"token_endpoint_auth_method"`
	GrantTypes              []string  `json:"grant_types"`
	Scope                   string    `json:"scope,omitempty"`
	RedirectURIs            []string  `json:"redirect_uris,omitempty"`
	HasJWKS                 bool      `json:"has_jwks,omitempty"`
	JWKSURI                 string    `json:"jwks_uri,omitempty"`
	CreatedAt               time.Time `json:"created_at,omitzero"`
}

// DescribeClient describes a client for listings.
func DescribeClient(c ports.ClientInfo) AdminClient {
	return AdminClient{
		ClientID: c.ID, ClientName: c.Name, Operator: c.Operator, TokenEndpointAuthMethod: string(c.AuthMethod),
		GrantTypes: c.GrantTypes, Scope: c.Scope, RedirectURIs: c.RedirectURIs, HasJWKS: c.HasJWKS, JWKSURI: c.JWKSURI,
		CreatedAt: c.CreatedAt,
	}
}

// ClientPage is the answer of GET /clients. Next, when set, is the after
// parameter of the following page.
type ClientPage struct {
	Clients []AdminClient `json:"clients"`
	Next    string        `json:"next,omitempty"`
}

// CreateClientRequest is the body of POST /clients.
type CreateClientRequest struct {
	ClientName string `json:"client_name"`
	Scope      string `json:"scope,omitempty"`
	// TokenEndpointAuthMethod is client_secret_basic (the default) or
	// private_key_jwt, which needs JWKS.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// JWKS is the client's public JWK Set, as a JSON object.
	JWKS json.RawMessage `json:"jwks,omitempty"`
}

// CreatedClient is the answer of POST /clients: the client and, for
// client_secret_basic, its secret, which is shown this once.
type CreatedClient struct {
	AdminClient
	ClientSecret string `json:"client_secret,omitempty"`
}

// DeletedClient is the answer of DELETE /clients/{client_id}.
type DeletedClient struct {
	ClientID      string `json:"client_id"`
	RevokedGrants int    `json:"revoked_grants"`
}

// AdminGrant is a grant as the admin API and `oidcproxy grants list` show
// it. LastUsedAt is its last refresh; a use of an access token is not
// recorded (that would be a write on every proxied request).
type AdminGrant struct {
	GrantID    string    `json:"grant_id"`
	Subject    string    `json:"sub"`
	ClientID   string    `json:"client_id"`
	Scope      string    `json:"scope,omitempty"`
	Resource   string    `json:"resource,omitempty"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
}

// DescribeGrant describes a grant for listings.
func DescribeGrant(g ports.GrantInfo) AdminGrant {
	return AdminGrant{
		GrantID: g.ID, Subject: g.Subject, ClientID: g.ClientID, Scope: domain.JoinScope(g.Scopes), Resource: g.Resource,
		CreatedAt: g.CreatedAt, LastUsedAt: g.LastUsedAt, ExpiresAt: g.ExpiresAt,
	}
}

// GrantPage is the answer of GET /grants; Next as in ClientPage.
type GrantPage struct {
	Grants []AdminGrant `json:"grants"`
	Next   string       `json:"next,omitempty"`
}

// RevokeGrantsRequest is the body of POST /grants/revoke: a user (subject),
// a client, a grant, or several of them, which must then all match.
type RevokeGrantsRequest struct {
	User   string `json:"user,omitempty"`
	Client string `json:"client,omitempty"`
	Grant  string `json:"grant,omitempty"`
}

// RevokedGrants is the answer of POST /grants/revoke.
type RevokedGrants struct {
	Revoked int `json:"revoked"`
}

// adminManageRoutes adds the client and grant endpoints to mux.
func (s *Server) adminManageRoutes(mux *http.ServeMux, admin ports.Admin) {
	mux.HandleFunc("GET /clients", func(w http.ResponseWriter, r *http.Request) {
		q, limit, err := pageQuery(r)
		if err != nil {
			s.writeAdminError(w, r, err)
			return
		}
		res, err := admin.ListClients.Handle(r.Context(), ports.ListClientsCommand{After: q["after"], Limit: limit})
		if err != nil {
			s.writeAdminError(w, r, err)
			return
		}
		out := ClientPage{Clients: make([]AdminClient, 0, len(res.Clients)), Next: res.Next}
		for _, c := range res.Clients {
			out.Clients = append(out.Clients, DescribeClient(c))
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /clients", func(w http.ResponseWriter, r *http.Request) {
		var req CreateClientRequest
		if err := decodeAdminJSON(r, &req); err != nil {
			s.writeAdminError(w, r, err)
			return
		}
		var jwks []byte
		if len(req.JWKS) > 0 && !bytes.Equal(bytes.TrimSpace(req.JWKS), []byte("null")) {
			jwks = req.JWKS
		}
		res, err := admin.CreateClient.Handle(r.Context(), ports.CreateClientCommand{
			Name: req.ClientName, Scope: req.Scope, AuthMethod: domain.AuthMethod(req.TokenEndpointAuthMethod), JWKS: jwks,
		})
		if err != nil {
			s.writeAdminError(w, r, err)
			return
		}
		c := res.Client
		s.audit(r, AuditClientCreated, "client_id", c.ID, "client_name", c.Name,
			"token_endpoint_auth_method", string(c.AuthMethod), "scope", c.Scope)
		writeJSON(w, http.StatusCreated, CreatedClient{AdminClient: DescribeClient(c), ClientSecret: res.ClientSecret})
	})
	mux.HandleFunc("DELETE /clients/{client_id}", func(w http.ResponseWriter, r *http.Request) {
		res, err := admin.DeleteClient.Handle(r.Context(), ports.DeleteClientCommand{ClientID: r.PathValue("client_id")})
		if err != nil {
			s.writeAdminError(w, r, err)
			return
		}
		s.audit(r, AuditClientDeleted, "client_id", res.ClientID, "revoked_grants", res.RevokedGrants)
		writeJSON(w, http.StatusOK, DeletedClient(res))
	})
	mux.HandleFunc("GET /grants", func(w http.ResponseWriter, r *http.Request) {
		q, limit, err := pageQuery(r, "user", "client")
		if err != nil {
			s.writeAdminError(w, r, err)
			return
		}
		res, err := admin.ListGrants.Handle(r.Context(), ports.ListGrantsCommand{
			Subject: q["user"], ClientID: q["client"], After: q["after"], Limit: limit,
		})
		if err != nil {
			s.writeAdminError(w, r, err)
			return
		}
		out := GrantPage{Grants: make([]AdminGrant, 0, len(res.Grants)), Next: res.Next}
		for _, g := range res.Grants {
			out.Grants = append(out.Grants, DescribeGrant(g))
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /grants/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req RevokeGrantsRequest
		if err := decodeAdminJSON(r, &req); err != nil {
			s.writeAdminError(w, r, err)
			return
		}
		res, err := admin.RevokeGrants.Handle(r.Context(), ports.RevokeGrantsCommand{
			Subject: req.User, ClientID: req.Client, GrantID: req.Grant,
		})
		if err != nil {
			s.writeAdminError(w, r, err)
			return
		}
		s.audit(r, AuditGrantsRevoked, "sub", req.User, "client_id", req.Client, "grant_id", req.Grant, "revoked", res.Revoked)
		writeJSON(w, http.StatusOK, RevokedGrants{Revoked: res.Revoked})
	})
}

// writeAdminError answers with an OAuth error document; a command naming
// a client that does not exist is 404.
func (s *Server) writeAdminError(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, domain.ErrNotFound) {
		s.writeJSONError(w, r, err)
		return
	}
	e := oauthhttp.ErrorOf(err)
	s.logError(r, e)
	oauthhttp.WriteError(w, http.StatusNotFound, e.Code, e.Description)
}

// query reads the named query parameters, refusing a repeated one (is
// user=a&user=b one user or two?) and a query that is not well formed.
func query(r *http.Request, names ...string) (map[string]string, error) {
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, domain.ErrInvalidRequest("the query string is malformed")
	}
	out := make(map[string]string, len(names))
	for _, name := range names {
		switch vs := values[name]; len(vs) {
		case 0:
		case 1:
			out[name] = vs[0]
		default:
			return nil, domain.ErrInvalidRequest(name + " is repeated")
		}
	}
	return out, nil
}

// pageQuery reads the query of a listing: the filters named, the cursor
// "after", and "limit", a positive number (0 when absent: the default page
// size).
func pageQuery(r *http.Request, filters ...string) (q map[string]string, limit int, err error) {
	q, err = query(r, append(filters, "after", "limit")...)
	if err != nil || q["limit"] == "" {
		return q, 0, err
	}
	limit, err = strconv.Atoi(q["limit"])
	if err != nil || limit < 1 {
		return nil, 0, domain.ErrInvalidRequest("limit must be a positive number")
	}
	return q, limit, nil
}

// decodeAdminJSON decodes the one JSON object of a request body into v,
// refusing members v does not have: a mistyped member of a revocation
// must not widen or narrow what it revokes unnoticed.
func decodeAdminJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return domain.ErrInvalidRequest("the request body is too large").WithCause(errBodyTooLarge)
		}
		return domain.ErrInvalidRequest("the request body is not the expected JSON object: " + jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return domain.ErrInvalidRequest("the request body holds more than one JSON document")
	}
	return nil
}

// jsonProblem says what is wrong with a body in words safe to echo: the
// decoder's own messages name fields and types, never values.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return "malformed JSON"
	case errors.As(err, &typ):
		return "member " + strconv.Quote(typ.Field) + " has the wrong type"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated body"
	}
	return clipText(err.Error())
}

// clipText bounds a message quoted back to the operator.
func clipText(s string) string {
	if len(s) > 120 {
		s = strings.ToValidUTF8(s[:120], "") + "…"
	}
	return s
}
