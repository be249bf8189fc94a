package e2e_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/test/idp"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
	"github.com/oidcproxy/oidcproxy/test/proxytest"
)

// buildBinary builds cmd/oidcproxy into the test's temporary directory:
// the binary an operator runs, for the tests that need a process to kill.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "oidcproxy")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/oidcproxy/oidcproxy/cmd/oidcproxy").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln := listen(t)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// process is one `oidcproxy serve` child process.
type process struct {
	cmd  *exec.Cmd
	Base string
	Logs *proxytest.LogBuffer
	done chan error
}

// startProcess runs `bin serve` with env (as its only OIDC_PROXY_* and
// OTEL_* variables) on a port of its own and waits until it answers.
func startProcess(t *testing.T, bin string, env map[string]string) *process {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OIDC_PROXY_") && !strings.HasPrefix(kv, "OTEL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "OIDC_PROXY_LISTEN_ADDR="+addr, "OIDC_PROXY_ADMIN_ADDR="+freeAddr(t))
	p := &process{cmd: cmd, Base: "http://" + addr, Logs: &proxytest.LogBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.Logs, p.Logs
	require.NoError(t, cmd.Start())
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("logs of the process at %s:\n%s", p.Base, p.Logs.String())
		}
	})
	_, ok := within(30*time.Second, func() bool {
		resp, err := http.Get(p.Base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	require.True(t, ok, "the process did not start:\n%s", p.Logs.String())
	return p
}

// kill sends SIGKILL (the process gets no chance to finish anything) and
// waits for it to die; it returns how it exited. A second call does
// nothing.
func (p *process) kill(t *testing.T) error {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-p.done:
		return err
	case <-time.After(10 * time.Second):
		t.Errorf("the process at %s did not die", p.Base)
		return nil
	}
}

// Two `oidcproxy serve` processes of the real binary on one database
// behind one address. One is killed with SIGKILL in the middle of a
// sign-in, after the user approved on it and while the identity provider
// has the browser; the callback, the code exchange and a refresh of the
// session that the dead instance issued all succeed on the survivor.
func TestAFlowCompletesOnAnotherInstanceWhenOneIsKilled(t *testing.T) {
	bin := buildBinary(t)
	frontLn := listen(t)
	base := "http://" + frontLn.Addr().String()
	op := idp.StartOP(t, idp.Client{ID: upstreamClientID, Secret: upstreamSecret, RedirectURIs: []string{base + "/auth/callback"}})
	env := baseEnv(t, base, op.ConfigURL)
	delete(env, "OIDC_PROXY_STORE_PATH")
	env["OIDC_PROXY_DATABASE_URL"] = pgtest.Database(t)
	env["OIDC_PROXY_LOG_LEVEL"] = "info"
	a := startProcess(t, bin, env)
	b := startProcess(t, bin, env)
	fr := newFront(t, frontLn, []string{a.Base, b.Base})
	p := &proxy{t: t, BaseURL: base, Env: env, Clock: &testClock{}, Logs: &proxytest.LogBuffer{}, Upstream: op}

	fr.use(0)
	client := p.register(t, nil)
	session, _ := p.login(t, client)
	f := newFlow(t, client)
	consent := p.toConsent(t, f)
	up := p.decide(t, f, consent, "approve")
	require.Equal(t, http.StatusSeeOther, up.Status, up.Body)
	cb, err := op.Login(t.Context(), f.Browser.Client, up.Location.String())
	require.NoError(t, err)

	err = a.kill(t)
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "the process was killed: %v", err)
	require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal())
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(a.Base, "http://"), time.Second)
	require.Error(t, err, "nothing answers at the killed instance's address")

	fr.use(1)
	final := f.Browser.get(t, cb.String())
	require.Equal(t, http.StatusFound, final.Status, "the survivor completes the callback of the flow the dead one started: %s", final.Body)
	q := final.Location.Query()
	require.Equal(t, f.State, q.Get("state"))
	tok, err := client.OAuth.Exchange(t.Context(), q.Get("code"), withVerifier(f.Verifier))
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	next, err := p.refresh(t, client, session.RefreshToken)
	require.NoError(t, err, "the session issued by the dead instance refreshes on the survivor")
	require.NotEmpty(t, next.AccessToken)
	require.NotContains(t, b.Logs.String(), `"level":"ERROR"`, fmt.Sprintf("the survivor logged errors:\n%s", b.Logs.String()))
}
