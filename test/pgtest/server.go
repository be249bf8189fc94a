package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL server of one test's own: a cluster made with
// initdb in a temporary directory, listening on 127.0.0.1 on a free port,
// that the test may stop and start as an operator would restart or lose
// the machine's server. The shared server cannot be restarted by a test:
// every other test running at the time would lose its database.
type Server struct {
	t       testing.TB
	dir     string
	port    int
	pgCtl   string
	asOwner func(name string, args ...string) *exec.Cmd
	// URL is the trust-authenticated URL of the server's database test.
	URL string
}

// NewServer makes, starts and (at the end of the test) removes a server
// of the test's own. Without the PostgreSQL server binaries it skips, or
// fails under OIDCPROXY_REQUIRE_POSTGRES=1.
//
// initdb and postgres refuse to run as root: a test running as root runs
// them as the postgres account (with runuser), as the distribution's own
// scripts do. The cluster trades durability against an operating-system
// crash for speed (fsync off): a stopped or killed server still loses
// nothing, which is what a test of restarts needs.
func NewServer(t testing.TB) *Server {
	t.Helper()
	bin, err := serverBinaries()
	if err != nil {
		unavailable(t, err)
	}
	s := &Server{t: t, pgCtl: filepath.Join(bin, "pg_ctl")}
	s.asOwner = func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
	if os.Geteuid() == 0 {
		owner, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, fmt.Errorf("running as root, and no postgres account to run the server as: %w", err))
		}
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		s.asOwner = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
		}
		s.dir, err = os.MkdirTemp("", namePrefix+"server_")
		if err == nil {
			err = os.Chown(s.dir, uid, gid)
		}
		if err != nil {
			t.Fatalf("pgtest: the server's directory: %v", err)
		}
	} else {
		s.dir, err = os.MkdirTemp("", namePrefix+"server_")
		if err != nil {
			t.Fatalf("pgtest: the server's directory: %v", err)
		}
	}
	t.Cleanup(func() { _ = os.RemoveAll(s.dir) })
	s.port = freePort(t)
	data := filepath.Join(s.dir, "data")
	s.run(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale", "C")
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = off\nmax_connections = 60\n", s.port, s.dir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatalf("pgtest: configure the server: %v", err)
	}
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/test?sslmode=disable", s.port)
	s.Start()
	t.Cleanup(func() { s.stop("immediate") })
	conn, err := pgx.Connect(context.Background(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port))
	if err != nil {
		t.Fatalf("pgtest: connect to the new server: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE test"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return s
}

// Start starts the server and waits until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	s.run(s.pgCtl, "start", "-w", "-t", "30", "-D", filepath.Join(s.dir, "data"), "-l", filepath.Join(s.dir, "log"))
}

// Crash stops the server as a crash would: every backend is killed at
// once, nothing is checkpointed, and the next Start recovers from the
// write-ahead log.
func (s *Server) Crash() {
	s.t.Helper()
	s.stop("immediate")
}

func (s *Server) stop(mode string) {
	cmd := s.asOwner(s.pgCtl, "stop", "-w", "-m", mode, "-D", filepath.Join(s.dir, "data"))
	_ = cmd.Run() // also called at cleanup, when it may be stopped already
}

func (s *Server) run(name string, args ...string) {
	s.t.Helper()
	var out bytes.Buffer
	cmd := s.asOwner(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		s.t.Fatalf("pgtest: %s %v: %v\n%s\n%s", filepath.Base(name), args, err, out.Bytes(), log)
	}
}

// serverBinaries finds the newest installed PostgreSQL's bin directory.
func serverBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// unavailable skips the test, or fails it under RequireEnv.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("pgtest: %v (%s=1)", err, RequireEnv)
	}
	t.Skipf("pgtest: %v", err)
}
