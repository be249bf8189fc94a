package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
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
var devDefaults = map[string]string{
	config.EnvPrefix + "LISTEN_ADDR": "127.0.0.1:8000",
	config.EnvPrefix + "BASE_URL":    "http://localhost:8000",
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
	s.serve(opLn, exampleop.SetupServer(s.IssuerURL, store, nil, false))

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

// devConfig loads the configuration for `oidcproxy dev`: the user's flags
// and OIDC_PROXY_* variables win over the development defaults.
func devConfig(args []string, getenv func(string) string, stderr io.Writer) (config.Config, error) {
	fs := flag.NewFlagSet("oidcproxy dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	return config.LoadFlags(fs, args, func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return devDefaults[k]
	}, oidcproxy.ProviderSections())
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
