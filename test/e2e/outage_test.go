package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// tokenAnswer is one /token answer as a load client sees it.
type tokenAnswer struct {
	At       time.Duration // since the run started
	Took     time.Duration
	Status   int
	Error    string // the OAuth error code, if any
	Refresh  string // the new refresh token, on 200
	Transfer error  // no HTTP answer at all
}

// postTokenTo posts a token request to one instance and decodes the
// answer.
func postTokenTo(client *http.Client, base string, form url.Values, start time.Time) tokenAnswer {
	t0 := time.Now()
	a := tokenAnswer{At: t0.Sub(start)}
	resp, err := client.Post(base+"/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	a.Took = time.Since(t0)
	if err != nil {
		a.Transfer = err
		return a
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	var doc struct {
		Error        string `json:"error"`
		RefreshToken string `json:"refresh_token"`
	}
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &doc); err != nil {
		a.Error = fmt.Sprintf("not JSON: %.100q", data)
	}
	a.Error, a.Refresh = doc.Error, doc.RefreshToken
	return a
}

// outage takes the database away and brings it back.
type outage struct {
	// setUp points the cluster's configuration at the database it will
	// take away.
	setUp func(t *testing.T, env map[string]string)
	down  func()
	up    func()
}

// PostgreSQL goes away in the middle of a load run on two instances, and
// comes back: every connection breaks and new ones are refused for two
// seconds, as in a server restart or a failover (a TCP proxy in front of
// the machine's shared server is cut; the server itself keeps running).
func TestLosingPostgreSQLDuringALoadRunAnswers503AndLosesNothing(t *testing.T) {
	var cut *pgtest.Cut
	loseTheDatabaseDuringALoadRun(t, outage{
		setUp: func(t *testing.T, env map[string]string) {
			cut, env["OIDC_PROXY_DATABASE_URL"] = pgtest.NewCut(t, env["OIDC_PROXY_DATABASE_URL"])
		},
		down: func() { cut.Down() },
		up:   func() { cut.Up() },
	})
}

// The same with a real PostgreSQL server of the test's own that crashes
// (every backend killed, nothing checkpointed) and restarts, recovering
// from its write-ahead log: the listening connections, the prepared
// statements and the sweeper's lock all die with it.
func TestAPostgreSQLCrashAndRestartDuringALoadRunAnswers503AndLosesNothing(t *testing.T) {
	var srv *pgtest.Server
	loseTheDatabaseDuringALoadRun(t, outage{
		setUp: func(t *testing.T, env map[string]string) {
			srv = pgtest.NewServer(t)
			env["OIDC_PROXY_DATABASE_URL"] = srv.URL
		},
		down: func() { srv.Crash() },
		up:   func() { srv.Start() },
	})
}

// loseTheDatabaseDuringALoadRun runs the load while the database goes
// away and comes back. Clients keep refreshing their sessions, and codes
// are sent to both instances at once. While the database is gone every
// request that needs it is answered 503 temporarily_unavailable,
// promptly, and readiness fails; when it is back, every client gets
// through again without any instance being restarted; no acknowledged
// write is lost (every refresh token a client got still works) and no
// code issues tokens twice.
func loseTheDatabaseDuringALoadRun(t *testing.T, o outage) {
	const (
		workers     = 6
		codes       = 16
		dbTimeout   = time.Second
		cutAt       = 1500 * time.Millisecond
		upAt        = 3500 * time.Millisecond
		runFor      = 6 * time.Second
		recoverIn   = 3 * time.Second
		answerLimit = dbTimeout + 2*time.Second
	)
	// The load comes from one address, far past the default per-address
	// limit of /token; a refusal there would hide what the outage does.
	c := startCluster(t, 2, withEnv("DATABASE_TIMEOUT", dbTimeout.String()), withEnv("RATE_LIMIT_TOKEN", "0"),
		func(env map[string]string) { o.setUp(t, env) })
	client := c.register(t, nil)
	c.Front.roundRobin()
	sessions := make([]string, workers)
	for i := range sessions {
		tok, _ := c.login(t, client)
		sessions[i] = tok.RefreshToken
	}
	type pending struct{ code, verifier string }
	var unredeemed []pending
	for range codes {
		f := newFlow(t, client)
		unredeemed = append(unredeemed, pending{c.authorize(t, f).Query().Get("code"), f.Verifier})
	}
	require.True(t, codeStored(t, c.Env["OIDC_PROXY_DATABASE_URL"], unredeemed[0].code),
		"codeStored finds a code the instances stored (else its check at the end could not fail)")

	httpClient := &http.Client{Timeout: 10 * time.Second}
	start := time.Now()
	deadline := start.Add(runFor)
	var (
		mu        sync.Mutex
		answers   = make([][]tokenAnswer, workers)
		acked     = make([]string, workers) // the last refresh token each client got
		codeRuns  [][2]tokenAnswer
		wg        sync.WaitGroup
		readiness = map[string]int{}
	)
	copy(acked, sessions)
	for w := range workers {
		wg.Go(func() {
			current := sessions[w]
			for n := 0; time.Now().Before(deadline); n++ {
				a := postTokenTo(httpClient, c.Direct[(w+n)%2], refreshForm(client, current), start)
				mu.Lock()
				answers[w] = append(answers[w], a)
				if a.Status == http.StatusOK {
					current, acked[w] = a.Refresh, a.Refresh
				}
				mu.Unlock()
				// After a failure the client retries the same token, as
				// clients do; a rotation that committed without its answer
				// arriving is then a retry within REFRESH_REUSE_GRACE.
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		for _, p := range unredeemed {
			if !time.Now().Before(deadline) {
				return
			}
			form := exchangeForm(client, p.code, p.verifier)
			var pair [2]tokenAnswer
			var both sync.WaitGroup
			for i := range pair {
				both.Go(func() { pair[i] = postTokenTo(httpClient, c.Direct[i], form, start) })
			}
			both.Wait()
			mu.Lock()
			codeRuns = append(codeRuns, pair)
			mu.Unlock()
			time.Sleep(runFor / codes)
		}
	})
	time.Sleep(time.Until(start.Add(cutAt)))
	o.down()
	time.Sleep(dbTimeout / 2)
	for _, base := range c.Direct {
		resp, err := http.Get(base + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		readiness[base] = resp.StatusCode
	}
	time.Sleep(time.Until(start.Add(upAt)))
	o.up()
	wg.Wait()

	for _, base := range c.Direct {
		require.Equal(t, http.StatusServiceUnavailable, readiness[base], "%s is not ready while the database is gone", base)
		_, ok := within(recoverIn, func() bool {
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		require.True(t, ok, "%s is ready again once the database is back", base)
	}

	unavailable := 0
	for w, as := range answers {
		recovered := false
		for _, a := range as {
			require.NoError(t, a.Transfer, "client %d at %s: every request gets an answer", w, a.At)
			require.LessOrEqual(t, a.Took, answerLimit, "client %d at %s: answered within the database timeout", w, a.At)
			switch a.Status {
			case http.StatusOK:
				if a.At > upAt {
					recovered = true
					require.Less(t, a.At, upAt+recoverIn, "client %d got through again soon after the database came back", w)
				}
			case http.StatusServiceUnavailable:
				require.Equal(t, "temporarily_unavailable", a.Error, "client %d at %s", w, a.At)
				require.Greater(t, a.At+a.Took, cutAt, "client %d at %s: 503 only once the database is gone", w, a.At)
				unavailable++
			default:
				t.Fatalf("client %d at %s: HTTP %d %q; want 200, or 503 temporarily_unavailable while the database is gone", w, a.At, a.Status, a.Error)
			}
		}
		require.True(t, recovered, "client %d got through again after the database came back", w)
		require.Equal(t, http.StatusOK, as[len(as)-1].Status, "client %d ended with a success", w)
	}
	require.Positive(t, unavailable, "the clients saw the database go")

	// No code issued tokens twice; the refresh tokens of codes whose other
	// request was answered 503 stay good, unless that request was a replay
	// that revoked the grant (see codeStored).
	exchanged := map[string]string{} // refresh token → the code it came from
	for i, pair := range codeRuns {
		ok := 0
		for _, a := range pair {
			require.NoError(t, a.Transfer)
			switch a.Status {
			case http.StatusOK:
				ok++
			case http.StatusBadRequest:
				require.Equal(t, "invalid_grant", a.Error)
			case http.StatusServiceUnavailable:
				require.Equal(t, "temporarily_unavailable", a.Error)
			default:
				t.Fatalf("code %d: HTTP %d %q", i, a.Status, a.Error)
			}
		}
		require.LessOrEqual(t, ok, 1, "code %d issued tokens on both instances", i)
		for j, a := range pair {
			if a.Status == http.StatusOK && pair[1-j].Status == http.StatusServiceUnavailable {
				acked = append(acked, a.Refresh)
				exchanged[a.Refresh] = unredeemed[i].code
			}
		}
	}

	// Every refresh token a client was given is in the database.
	for i, rt := range acked {
		a := postTokenTo(httpClient, c.Direct[i%2], refreshForm(client, rt), start)
		if code, ok := exchanged[rt]; ok && a.Status == http.StatusBadRequest && a.Error == "invalid_grant" {
			require.False(t, codeStored(t, c.Env["OIDC_PROXY_DATABASE_URL"], code),
				"acknowledged refresh token %d is refused while its grant is still stored: a lost write", i)
			continue
		}
		require.Equal(t, http.StatusOK, a.Status, "acknowledged refresh token %d: %q", i, a.Error)
	}
}

// codeStored reports whether an authorization code is still in the
// database, and with it its grant (deleting a grant deletes its codes).
//
// A 503 does not say that a request never reached the database: the
// database may go after the request's statement committed and before its
// answer arrived, and the instance cannot know which (it answers 503 for
// an unknown outcome). When that request was the second of a code's
// concurrent pair, it was a replay with everything the client holds, and
// it revoked the grant, as it must: the first request's refresh token is
// then rightly refused. A lost write looks otherwise: the grant and its
// redeemed code are still there, without the token.
func codeStored(t *testing.T, dbURL, code string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var stored bool
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM codes WHERE hash = $1)", domain.HashToken(code)).Scan(&stored))
	return stored
}
