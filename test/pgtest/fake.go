package pgtest

import (
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// PasswordRefusingServer starts a listener on loopback, returns its
// host:port, and answers every connection there as a PostgreSQL server with
// password authentication answers a wrong password: it asks for the
// password, then refuses it (SQLSTATE 28P01). It stands in for a real
// server because the test machine's PostgreSQL trusts every local
// connection and so never refuses a password; it speaks the real wire
// protocol (pgproto3), so the client code under test runs unchanged.
func PasswordRefusingServer(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: listen: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go refusePassword(c)
		}
	}()
	return ln.Addr().String()
}

func refusePassword(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	be := pgproto3.NewBackend(c, c)
	msg, err := be.ReceiveStartupMessage()
	if _, ssl := msg.(*pgproto3.SSLRequest); ssl && err == nil {
		if _, err := c.Write([]byte{'N'}); err != nil {
			return
		}
		msg, err = be.ReceiveStartupMessage()
	}
	startup, ok := msg.(*pgproto3.StartupMessage)
	if err != nil || !ok {
		return
	}
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := be.Flush(); err != nil {
		return
	}
	if err := be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return
	}
	if _, err := be.Receive(); err != nil {
		return
	}
	be.Send(&pgproto3.ErrorResponse{
		Severity: "FATAL", Code: "28P01",
		Message: `password authentication failed for user "` + startup.Parameters["user"] + `"`,
	})
	_ = be.Flush()
}
