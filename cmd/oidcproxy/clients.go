package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/config"
	"github.com/oidcproxy/oidcproxy/adapters/httpapi"
	"github.com/oidcproxy/oidcproxy/adapters/oauthhttp"
	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/domain/usecase"
	"github.com/oidcproxy/oidcproxy/ports"
)

// The clients and grants subcommands choose where to work as keys does:
// on the PostgreSQL database at DATABASE_URL, which every server shares
// (a revocation is a deletion there, which every server's next bearer
// check sees); else on the store file when no server holds it; else
// through the running server's admin listener, so that the server's grant
// cache, which its gateway reads, forgets a revoked grant at once. Either
// way the same use cases run; the admin listener writes the audit events
// of what it changes, and the direct path writes them to standard error.

const clientsUsage = `usage: oidcproxy clients list|create|delete [flags]

  list                          show every client: registered ones and machine clients
                                an operator created (KIND operator)
  create --name NAME [--scope "a b"] [--jwks-file FILE]
                                create a machine client for the client_credentials grant;
                                prints its client_id and, without --jwks-file, its secret
                                (shown once). With --jwks-file it authenticates with
                                private_key_jwt, signing with a key of that JWK Set
  delete CLIENT_ID              delete a client and revoke every grant (token) of it

Flags: --json for JSON output; list takes --limit N (default: all); the service's
settings, see "oidcproxy serve -h". Works on the store when no server holds it, else
through the running server's admin listener (OIDC_PROXY_ADMIN_ADDR, with
OIDC_PROXY_ADMIN_TOKEN when set); with OIDC_PROXY_DATABASE_URL, on the database.`

const grantsUsage = `usage: oidcproxy grants list|revoke [flags]

  list [--user SUB] [--client ID]
                                show the live grants (signed-in sessions) of a user, a client,
                                both, or everyone: created, last refresh, expiry
  revoke --user SUB | --client ID | --grant ID
                                revoke grants: every token of them stops working at once
                                (flags given together must all match)

Flags: --json for JSON output; list takes --limit N (default: all); the service's
settings, see "oidcproxy serve -h". Works like "oidcproxy clients" (see its help).`

// lastUseNote says what the last-use column means, under every grant table.
const lastUseNote = "LAST REFRESH is when a refresh last renewed the grant's tokens; a use of an access token is not recorded."

// clientsCmd runs `oidcproxy clients`.
func clientsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if helpAsked(args) {
		fmt.Fprintln(stdout, clientsUsage)
		return 0
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, clientsUsage)
		return 2
	}
	action, rest := args[0], args[1:]
	var (
		asJSON             bool
		limit              int
		name, scope        string
		jwksFile, clientID string
	)
	flags := func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
		switch action {
		case "list":
			fs.IntVar(&limit, "limit", 0, "show at most this many clients (0: all)")
		case "create":
			fs.StringVar(&name, "name", "", "the client's name (required)")
			fs.StringVar(&scope, "scope", "", "the scopes the client may ask for, space-separated")
			fs.StringVar(&jwksFile, "jwks-file", "", "a JWK Set of the client's public keys: it authenticates with private_key_jwt")
		}
	}
	switch action {
	case "list", "create":
	case "delete":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprintln(stderr, "oidcproxy clients delete: name the client: oidcproxy clients delete CLIENT_ID")
			return 2
		}
		clientID, rest = rest[0], rest[1:]
	default:
		fmt.Fprintln(stderr, clientsUsage)
		return 2
	}
	cmdName := "clients " + action
	cfg, fs, code, ok := adminLoad(cmdName, rest, getenv, stderr, flags)
	if !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "oidcproxy %s: unexpected argument %q\n", cmdName, fs.Arg(0))
		return 2
	}
	op := adminOp{ctx: ctx, cfg: cfg, stderr: stderr}
	var err error
	switch action {
	case "list":
		var clients []httpapi.AdminClient
		if clients, err = op.listClients(limit); err == nil {
			err = printClients(stdout, clients, asJSON)
		}
	case "create":
		req := httpapi.CreateClientRequest{ClientName: name, Scope: scope}
		if jwksFile != "" {
			req.TokenEndpointAuthMethod = string(domain.AuthPrivateKeyJWT)
			if req.JWKS, err = readJWKS(jwksFile); err != nil {
				fmt.Fprintf(stderr, "oidcproxy %s: %v\n", cmdName, err)
				return 1
			}
		}
		var created httpapi.CreatedClient
		if created, err = op.createClient(req); err == nil {
			err = printCreated(stdout, created, jwksFile, asJSON)
		}
	case "delete":
		var deleted httpapi.DeletedClient
		if deleted, err = op.deleteClient(clientID); err == nil {
			err = printResult(stdout, deleted, asJSON, fmt.Sprintf("deleted client %s; revoked %d grant(s)", printable(deleted.ClientID), deleted.RevokedGrants))
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy %s: %v\n", cmdName, describeErr(err))
		return 1
	}
	return 0
}

// grantsCmd runs `oidcproxy grants`.
func grantsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if helpAsked(args) {
		fmt.Fprintln(stdout, grantsUsage)
		return 0
	}
	if len(args) == 0 || (args[0] != "list" && args[0] != "revoke") {
		fmt.Fprintln(stderr, grantsUsage)
		return 2
	}
	action := args[0]
	var (
		asJSON              bool
		limit               int
		user, client, grant string
	)
	name := "grants " + action
	cfg, fs, code, ok := adminLoad(name, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
		fs.StringVar(&user, "user", "", "the user's subject (sub) at the identity provider")
		fs.StringVar(&client, "client", "", "the client id")
		if action == "list" {
			fs.IntVar(&limit, "limit", 0, "show at most this many grants (0: all)")
		} else {
			fs.StringVar(&grant, "grant", "", "one grant's id")
		}
	})
	if !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "oidcproxy %s: unexpected argument %q\n", name, fs.Arg(0))
		return 2
	}
	op := adminOp{ctx: ctx, cfg: cfg, stderr: stderr}
	var err error
	if action == "list" {
		var grants []httpapi.AdminGrant
		if grants, err = op.listGrants(user, client, limit); err == nil {
			err = printGrants(stdout, grants, asJSON)
		}
	} else {
		if user == "" && client == "" && grant == "" {
			fmt.Fprintln(stderr, "oidcproxy grants revoke: name what to revoke: --user SUB, --client ID or --grant ID")
			return 2
		}
		var res httpapi.RevokedGrants
		if res, err = op.revokeGrants(httpapi.RevokeGrantsRequest{User: user, Client: client, Grant: grant}); err == nil {
			err = printResult(stdout, res, asJSON, fmt.Sprintf("revoked %d grant(s); their tokens no longer work", res.Revoked))
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy %s: %v\n", name, describeErr(err))
		return 1
	}
	return 0
}

func helpAsked(args []string) bool {
	return len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help")
}

// readJWKS reads a key set file, bounded: the server judges its content.
func readJWKS(path string) (json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, err
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%s is not JSON: it must hold a JWK Set, {\"keys\":[…]}", path)
	}
	return bytes.TrimSpace(raw), nil
}

// adminOp is one operator command: it runs the use cases on the store
// directly, or asks the running server.
type adminOp struct {
	ctx    context.Context
	cfg    config.Config
	stderr io.Writer
}

// direct runs fn on the operator's use cases over the store when this
// process may open it, and reports false when a running server holds the
// store file (the caller then asks that server).
func (o adminOp) direct(fn func(ports.Admin) error) (bool, error) {
	admin, closeStore, err := oidcproxy.InitializeAdmin(o.ctx, o.cfg)
	if heldByServer(err) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	defer closeStore()
	return true, fn(admin)
}

// audit writes the audit event of a change made on the store directly (the
// admin listener writes its own): to standard error, in the service's log
// format.
func (o adminOp) audit(event string, attrs ...any) {
	base := []any{"audit", true, "event", event, "via", "command line"}
	oidcproxy.NewLogger(o.cfg, o.stderr).Info("audit", append(base, attrs...)...)
}

func (o adminOp) listClients(limit int) ([]httpapi.AdminClient, error) {
	var out []httpapi.AdminClient
	full := func() bool { return limit > 0 && len(out) >= limit }
	direct, err := o.direct(func(a ports.Admin) error {
		return pages(func(after string) (string, error) {
			res, err := a.ListClients.Handle(o.ctx, ports.ListClientsCommand{After: after, Limit: pageSize(limit, len(out))})
			for _, c := range res.Clients {
				out = append(out, httpapi.DescribeClient(c))
			}
			return res.Next, err
		}, full)
	})
	if err == nil && !direct {
		err = pages(func(after string) (string, error) {
			var p httpapi.ClientPage
			err := o.call(http.MethodGet, "/clients?"+url.Values{"after": {after}, "limit": {strconv.Itoa(pageSize(limit, len(out)))}}.Encode(), nil, &p)
			out = append(out, p.Clients...)
			return p.Next, err
		}, full)
	}
	return out, err
}

func (o adminOp) listGrants(user, client string, limit int) ([]httpapi.AdminGrant, error) {
	var out []httpapi.AdminGrant
	full := func() bool { return limit > 0 && len(out) >= limit }
	direct, err := o.direct(func(a ports.Admin) error {
		return pages(func(after string) (string, error) {
			res, err := a.ListGrants.Handle(o.ctx, ports.ListGrantsCommand{
				Subject: user, ClientID: client, After: after, Limit: pageSize(limit, len(out)),
			})
			for _, g := range res.Grants {
				out = append(out, httpapi.DescribeGrant(g))
			}
			return res.Next, err
		}, full)
	})
	if err == nil && !direct {
		err = pages(func(after string) (string, error) {
			q := url.Values{"after": {after}, "limit": {strconv.Itoa(pageSize(limit, len(out)))}}
			if user != "" {
				q.Set("user", user)
			}
			if client != "" {
				q.Set("client", client)
			}
			var p httpapi.GrantPage
			err := o.call(http.MethodGet, "/grants?"+q.Encode(), nil, &p)
			out = append(out, p.Grants...)
			return p.Next, err
		}, full)
	}
	return out, err
}

// pages calls page from the first page on, each with the previous one's
// cursor, until the last page or until full says enough.
func pages(page func(after string) (string, error), full func() bool) error {
	after := ""
	for {
		next, err := page(after)
		if err != nil || next == "" || full() {
			return err
		}
		after = next
	}
}

// pageSize is the size of the next page: the largest the server allows,
// or what is left of limit.
func pageSize(limit, have int) int {
	if limit <= 0 {
		return usecase.MaxListLimit
	}
	return min(limit-have, usecase.MaxListLimit)
}

func (o adminOp) createClient(req httpapi.CreateClientRequest) (httpapi.CreatedClient, error) {
	var out httpapi.CreatedClient
	direct, err := o.direct(func(a ports.Admin) error {
		res, err := a.CreateClient.Handle(o.ctx, ports.CreateClientCommand{
			Name: req.ClientName, Scope: req.Scope, AuthMethod: domain.AuthMethod(req.TokenEndpointAuthMethod), JWKS: req.JWKS,
		})
		if err != nil {
			return err
		}
		c := res.Client
		o.audit(httpapi.AuditClientCreated, "client_id", c.ID, "client_name", c.Name,
			"token_endpoint_auth_method", string(c.AuthMethod), "scope", c.Scope)
		out = httpapi.CreatedClient{AdminClient: httpapi.DescribeClient(c), ClientSecret: res.ClientSecret}
		return nil
	})
	if err == nil && !direct {
		err = o.call(http.MethodPost, "/clients", req, &out)
	}
	return out, err
}

func (o adminOp) deleteClient(id string) (httpapi.DeletedClient, error) {
	var out httpapi.DeletedClient
	direct, err := o.direct(func(a ports.Admin) error {
		res, err := a.DeleteClient.Handle(o.ctx, ports.DeleteClientCommand{ClientID: id})
		if err != nil {
			return err
		}
		o.audit(httpapi.AuditClientDeleted, "client_id", res.ClientID, "revoked_grants", res.RevokedGrants)
		out = httpapi.DeletedClient(res)
		return nil
	})
	if err == nil && !direct {
		err = o.call(http.MethodDelete, "/clients/"+url.PathEscape(id), nil, &out)
	}
	return out, err
}

func (o adminOp) revokeGrants(req httpapi.RevokeGrantsRequest) (httpapi.RevokedGrants, error) {
	var out httpapi.RevokedGrants
	direct, err := o.direct(func(a ports.Admin) error {
		res, err := a.RevokeGrants.Handle(o.ctx, ports.RevokeGrantsCommand{Subject: req.User, ClientID: req.Client, GrantID: req.Grant})
		if err != nil {
			return err
		}
		o.audit(httpapi.AuditGrantsRevoked, "sub", req.User, "client_id", req.Client, "grant_id", req.Grant, "revoked", res.Revoked)
		out.Revoked = res.Revoked
		return nil
	})
	if err == nil && !direct {
		err = o.call(http.MethodPost, "/grants/revoke", req, &out)
	}
	return out, err
}

// call sends one request to the running server's admin listener, with a
// JSON body when body is not nil, and decodes its JSON answer into out.
// The server's refusal comes back as its error description.
func (o adminOp) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(o.ctx, method, adminURL(o.cfg, path), rd)
	if err != nil {
		return err
	}
	req.Header.Set(httpapi.AdminRequestHeader, "1")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.cfg.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+o.cfg.AdminToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the store is locked by a running server, and its admin listener (%s) cannot be reached: %w", o.cfg.AdminAddr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e oauthhttp.ErrorBody
		if json.Unmarshal(raw, &e) == nil && e.ErrorDescription != "" {
			return fmt.Errorf("the running server refused: %s", e.ErrorDescription)
		}
		return fmt.Errorf("the running server answered %s", resp.Status)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin answer: %w", err)
	}
	return nil
}

// printResult prints v as JSON, or the sentence for people.
func printResult(w io.Writer, v any, asJSON bool, sentence string) error {
	if asJSON {
		return printJSON(w, v)
	}
	_, err := fmt.Fprintln(w, sentence)
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printClients(w io.Writer, clients []httpapi.AdminClient, asJSON bool) error {
	if clients == nil {
		clients = []httpapi.AdminClient{}
	}
	if asJSON {
		return printJSON(w, map[string]any{"clients": clients})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tNAME\tKIND\tAUTH\tGRANT TYPES\tSCOPE\tCREATED")
	for _, c := range clients {
		kind := "dynamic"
		if c.Operator {
			kind = "operator"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(c.ClientID), cell(c.ClientName), kind,
			c.TokenEndpointAuthMethod, cell(strings.Join(c.GrantTypes, ",")), cell(c.Scope), when(c.CreatedAt))
	}
	return tw.Flush()
}

func printCreated(w io.Writer, c httpapi.CreatedClient, jwksFile string, asJSON bool) error {
	if asJSON {
		return printJSON(w, c)
	}
	fmt.Fprintf(w, "created machine client %q for the client_credentials grant\n", printable(c.ClientName))
	fmt.Fprintf(w, "  client_id:     %s\n", c.ClientID)
	if c.ClientSecret != "" {
		fmt.Fprintf(w, "  client_secret: %s\n", c.ClientSecret)
		fmt.Fprintln(w, "  The secret is shown this once and stored only as a hash: keep it in your secret store now.")
		fmt.Fprintln(w, "  The client authenticates with HTTP Basic (client_secret_basic).")
	} else {
		fmt.Fprintf(w, "  The client authenticates with private_key_jwt, signing with a key of %s.\n", printable(jwksFile))
	}
	if c.Scope != "" {
		fmt.Fprintf(w, "  scope:         %s\n", c.Scope)
	}
	return nil
}

func printGrants(w io.Writer, grants []httpapi.AdminGrant, asJSON bool) error {
	if grants == nil {
		grants = []httpapi.AdminGrant{}
	}
	if asJSON {
		return printJSON(w, map[string]any{"grants": grants})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT ID\tUSER\tCLIENT\tSCOPE\tCREATED\tLAST REFRESH\tEXPIRES")
	for _, g := range grants {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(g.GrantID), cell(g.Subject), printable(g.ClientID),
			cell(g.Scope), when(g.CreatedAt), when(g.LastUsedAt), when(g.ExpiresAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, lastUseNote)
	return err
}

// when formats a time for a table; "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// cell is a table cell: printable, "-" when empty, and cut short so that
// one long value does not push every column off the screen.
func cell(s string) string {
	s = printable(s)
	switch {
	case s == "":
		return "-"
	case len([]rune(s)) > 40:
		return string([]rune(s)[:39]) + "…"
	}
	return s
}

// printable replaces control characters (a tab would break the table, an
// escape sequence would drive the terminal) in values that came from
// clients and identity providers.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}

// describeErr shortens a use case's refusal to its description; a failure
// of the store keeps its cause, which the operator needs.
func describeErr(err error) error {
	var e *domain.Error
	if errors.As(err, &e) && !e.Internal() {
		return errors.New(e.Description)
	}
	return err
}
