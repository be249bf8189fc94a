package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/oidcproxy/oidcproxy"
	"github.com/oidcproxy/oidcproxy/adapters/config"
)

// Development defaults: everything on this machine only, nothing on disk.
// BASE_URL has none: devBaseURL derives it from the listen address.
var devDefaults = map[string]string{
	config.EnvPrefix + "LISTEN_ADDR": "127.0.0.1:8000",
	config.EnvPrefix + "ADMIN_ADDR":  "127.0.0.1:0",
	config.EnvPrefix + "STORE_PATH":  oidcproxy.MemoryStorePath,
	config.EnvPrefix + "LOG_FORMAT":  "text",
	// Client metadata documents of clients under development live on
	// this machine too; https stays required.
	config.EnvPrefix + "CIMD_ALLOW_PRIVATE_NETWORK": "true",
}

// devClientID is the proxy's client at the development OpenID provider.
const devClientID = "oidcproxy-dev"

// devStack is what `oidcproxy dev` runs beside the proxy: an OpenID
// provider (zitadel/oidc's example OP, a real implementation with a login
// form and one fixed user) and a demo MCP server (the official Go SDK) with
// a whoami tool. Both listen on loopback only.
type devStack struct {
	IssuerURL          string
	MCPURL             string
	ClientSecret       string
	Username, Password string
	servers            []*http.Server
}

// startDevStack starts the development IdP, which redirects back to
// redirectURL, and the demo MCP server.
func startDevStack(redirectURL string) (*devStack, error) {
	s := &devStack{ClientSecret: rand.Text()}
	opLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dev: listen for the identity provider: %w", err)
	}
	// "localhost" rather than the IP: the example OP names its user after
	// the issuer's host (test-user@localhost).
	s.IssuerURL = fmt.Sprintf("http://localhost:%d", opLn.Addr().(*net.TCPAddr).Port)
	users := storage.NewUserStore(s.IssuerURL)
	s.Username, s.Password = users.GetUserByID("id1").Username, users.GetUserByID("id1").Password
	store := storage.NewStorageWithClients(users, map[string]*storage.Client{
		devClientID: storage.WebClient(devClientID, s.ClientSecret, redirectURL),
	})
	// The example OP's own login page is an empty form; ours posts to the
	// same handler with the fixed user already filled in.
	op := http.NewServeMux()
	op.Handle("GET /login/username", devLoginPage(s.Username, s.Password))
	op.Handle("/", exampleop.SetupServer(s.IssuerURL, store, nil, false))
	s.serve(opLn, op)

	mcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("dev: listen for the demo MCP server: %w", err)
	}
	s.MCPURL = "http://" + mcpLn.Addr().String() + "/mcp"
	mux := http.NewServeMux()
	mux.Handle("/mcp", demoMCPHandler())
	s.serve(mcpLn, mux)
	return s, nil
}

func (s *devStack) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
}

// Close stops the development servers.
func (s *devStack) Close() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
}

// whoamiOutput is what the demo tool returns: the identity the gateway
// forwarded.
type whoamiOutput struct {
	Subject string `json:"subject"`
	Email   string `json:"email,omitempty"`
}

// demoMCPHandler is a minimal MCP server that trusts the identity headers
// the gateway sets (it must only ever be reachable through the gateway).
func demoMCPHandler() http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "oidcproxy-demo", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{
		Name:        "whoami",
		Description: "Tells who the signed-in user is, as the oidcproxy gateway reported it.",
	}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoamiOutput, error) {
		var out whoamiOutput
		if req.Extra != nil && req.Extra.Header != nil {
			out.Subject = req.Extra.Header.Get("X-Forwarded-User")
			out.Email = req.Extra.Header.Get("X-Forwarded-Email")
		}
		if out.Subject == "" {
			return nil, out, errors.New("no identity: this server must be reached through the oidcproxy gateway")
		}
		text := "You are " + out.Subject
		if out.Email != "" {
			text += " (" + out.Email + ")"
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, out, nil
	})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
}

// devLoginTemplate is the development IdP's sign-in page: the example OP's
// form (the same fields, posted to the same handler), pre-filled, because
// the development user is fixed and the banner prints its password anyway.
var devLoginTemplate = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>oidcproxy dev: sign in</title></head>
<body style="font-family: sans-serif; max-width: 22rem; margin: 4rem auto">
<h1 style="font-size: 1.2rem">oidcproxy development identity provider</h1>
<p>The development user is filled in: press Sign in.</p>
<form method="POST" action="/login/username">
<input type="hidden" name="id" value="{{.ID}}">
<p><label for="username">Username</label><br>
<input id="username" name="username" autocomplete="username" value="{{.Username}}" style="width: 100%"></p>
<p><label for="password">Password</label><br>
<input id="password" name="password" type="password" autocomplete="current-password" value="{{.Password}}" style="width: 100%"></p>
<button type="submit">Sign in</button>
</form>
</body>
</html>
`))

// devLoginPage serves devLoginTemplate for the authorization request the
// example OP names in its redirect (/login/username?authRequestID=…).
func devLoginPage(username, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		err := devLoginTemplate.Execute(w, struct{ ID, Username, Password string }{
			ID: r.URL.Query().Get("authRequestID"), Username: username, Password: password,
		})
		if err != nil {
			slog.Warn("dev: render the login page", "error", err)
		}
	})
}

// devConfig loads the configuration for `oidcproxy dev`: the user's flags
// and OIDC_PROXY_* variables win over the development defaults, and
// BASE_URL, when nobody set it, follows the listen address.
func devConfig(args []string, getenv func(string) string, stderr io.Writer) (config.Config, error) {
	fs := flag.NewFlagSet("oidcproxy dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := config.LoadFlags(fs, args, func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return devDefaults[k]
	}, oidcproxy.ProviderSections())
	if err != nil || cfg.BaseURL != "" {
		return cfg, err
	}
	cfg.BaseURL, err = devBaseURL(cfg.ListenAddr)
	return cfg, err
}

// devBaseURL is the URL at which a browser on this machine reaches the
// listen address: IPv4 loopback and unspecified addresses become
// "localhost" (what MCP clients and the banner use), IPv6 loopback stays
// a literal (localhost may resolve to 127.0.0.1 first, where nothing
// listens), other hosts are kept.
func devBaseURL(listenAddr string) (string, error) {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "", fmt.Errorf("dev: OIDC_PROXY_LISTEN_ADDR %q is not host:port: %w", listenAddr, err)
	}
	if port == "0" {
		return "", errors.New("dev: OIDC_PROXY_LISTEN_ADDR has port 0, which is only chosen at start: set a port, or OIDC_PROXY_BASE_URL")
	}
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.IsUnspecified():
		host = "localhost"
	case ip != nil && ip.IsLoopback() && ip.To4() != nil:
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// dev runs the proxy with the development IdP and demo MCP server.
func dev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := devConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy dev: invalid configuration:\n%v\n", err)
		return 1
	}
	stack, err := startDevStack(cfg.RedirectURL())
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy dev: %v\n", err)
		return 1
	}
	defer stack.Close()
	cfg.Provider = "oidc"
	cfg.ConfigURL = stack.IssuerURL + "/.well-known/openid-configuration"
	cfg.ClientID, cfg.ClientSecret = devClientID, stack.ClientSecret
	if cfg.MCPUpstream == "" {
		cfg.MCPUpstream = stack.MCPURL
	}
	if err := cfg.Validate(config.ValidateOptions{RequireUpstream: true, Provider: oidcproxy.ValidateProvider}); err != nil {
		fmt.Fprintf(stderr, "oidcproxy dev: invalid configuration:\n%v\n", err)
		return 1
	}
	// The example OP logs every request through the process-wide logger;
	// keep the terminal for what matters.
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	app, cleanup, err := oidcproxy.InitializeApp(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "oidcproxy dev: cannot start: %v\n", err)
		return 1
	}
	defer cleanup()
	printDevBanner(stdout, cfg, stack)
	if err := app.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "oidcproxy dev: %v\n", err)
		return 1
	}
	return 0
}

func printDevBanner(w io.Writer, cfg config.Config, s *devStack) {
	mcpURL := strings.TrimSuffix(cfg.BaseURL, "/") + cfg.MCPPath
	u, _ := url.Parse(mcpURL)
	fmt.Fprintf(w, `
  oidcproxy dev — DEVELOPMENT ONLY: a built-in identity provider with a fixed
  user and password, in-memory state. Never expose this to a network.

  MCP server (behind the gateway):  %s
  Authorization server metadata:    %s/.well-known/oauth-authorization-server
  Development identity provider:    %s
    sign in as   %s
    password     %s
  Backend MCP server:               %s

  Connect an MCP client to %s, for example:
    npx @modelcontextprotocol/inspector      (transport "Streamable HTTP", URL above)
    claude mcp add --transport http oidcproxy-dev %s
  then call the "whoami" tool.

`, mcpURL, strings.TrimSuffix(cfg.Issuer(), "/"), s.IssuerURL, s.Username, s.Password, cfg.MCPUpstream, u.Host, mcpURL)
}
