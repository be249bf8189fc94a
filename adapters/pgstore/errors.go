package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/ports"
)

// SQLSTATE codes the store acts on.
const (
	codeUniqueViolation = "23505"
	codeDeadlock        = "40P01"
	codeInvalidPassword = "28P01"
	codeInvalidAuth     = "28000"
	codeUnknownDatabase = "3D000"
)

// unavailableStates are SQLSTATEs (or their two-character classes) that
// say the database cannot serve now but may soon: connection exceptions,
// a server shutting down or starting, too many connections, a statement
// cancelled by statement_timeout, a transaction that lost a deadlock or
// serialization race, a standby that refuses writes during a failover.
var unavailableStates = []string{"08", "53", "57P01", "57P02", "57P03", "57014", "40001", "40P01", "25006"}

// fail wraps a store error with the operation's name. Errors that mean
// "the database is unreachable or too slow right now" also wrap
// ports.ErrUnavailable, so the use cases can answer 503 rather than 500. A
// cancellation by the caller stays what it is.
func fail(op string, err error) error {
	if unavailable(err) {
		err = unavailableError{err}
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// unavailableError adds ports.ErrUnavailable to an error's chain without
// changing its message.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{ports.ErrUnavailable, e.err} }

// unavailable reports whether err says the database cannot be reached or
// did not answer in time, as opposed to a refusal or a bug.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up; nothing is wrong with the database
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		for _, s := range unavailableStates {
			if strings.HasPrefix(pgErr.Code, s) {
				return true
			}
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		pgconn.SafeToRetry(err)
}

// pgCode returns err's SQLSTATE, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// alreadyExists turns a unique violation into domain.ErrAlreadyExists.
func alreadyExists(err error) error {
	if pgCode(err) == codeUniqueViolation {
		return domain.ErrAlreadyExists
	}
	return err
}

// ConnectionError is what Open, Inspect and Ping report when the database
// cannot be used at all: one line that says why (the URL is malformed, the
// server cannot be reached, it refused the credentials, the database does
// not exist) and never contains the password.
type ConnectionError struct {
	// Problem is the one-line explanation.
	Problem string
	err     error
}

func (e *ConnectionError) Error() string { return "pgstore: " + e.Problem }

// Unwrap returns the cause, for errors.Is (context errors,
// ports.ErrUnavailable). Its text is not part of Error: the driver's
// messages can quote parts of the connection string.
func (e *ConnectionError) Unwrap() error { return e.err }

// connectionError explains err, a failure to connect to t or to run a
// first statement there, scrubbing the password from whatever text it
// quotes.
func connectionError(err error, t target) error {
	target, user, database, password := t.addr, t.user, t.database, t.password
	var problem string
	switch code := pgCode(err); {
	case code == codeInvalidPassword || code == codeInvalidAuth:
		problem = fmt.Sprintf("the database server at %s refused the credentials of user %q (wrong password or user, or no pg_hba.conf entry)", target, user)
	case code == codeUnknownDatabase:
		problem = fmt.Sprintf("database %q does not exist on the server at %s", database, target)
	case errors.Is(err, context.Canceled):
		problem = "cancelled while connecting to the database server at " + target
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		problem = fmt.Sprintf("no answer from the database server at %s in time (is the host reachable, and OIDC_PROXY_DATABASE_TIMEOUT long enough?)", target)
	case errors.Is(err, syscall.ECONNREFUSED):
		problem = fmt.Sprintf("cannot reach the database server at %s: connection refused (is PostgreSQL running and listening there?)", target)
	default:
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			problem = fmt.Sprintf("cannot resolve the database host of %s: %s", target, dnsErr.Err)
			break
		}
		problem = fmt.Sprintf("cannot use the database at %s: %s", target, oneLine(scrub(innermost(err).Error(), password)))
	}
	if unavailable(err) {
		err = unavailableError{err}
	}
	return &ConnectionError{Problem: scrub(problem, password), err: err}
}

// innermost unwraps err through single-cause wrappers: the driver's outer
// layers repeat the user and database, which the message already names.
func innermost(err error) error {
	for {
		var connectErr *pgconn.ConnectError
		if errors.As(err, &connectErr) && connectErr.Unwrap() != nil {
			err = connectErr.Unwrap()
			continue
		}
		return err
	}
}

// oneLine joins a multi-line driver message (one line per address tried).
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

var (
	// urlPassword matches the password of a URL's userinfo.
	urlPassword = regexp.MustCompile(`(://[^/:@\s]*:)[^@\s]*@`)
	// kvPassword matches password=... in a keyword/value string or a query.
	kvPassword = regexp.MustCompile(`(?i)((?:ssl)?password=)('[^']*'|[^\s&]*)`)
)

// scrub removes password from text, in the forms it can take there (raw,
// percent-encoded), and masks anything shaped like a password in a URL or
// a keyword/value string: a driver message may quote a connection string.
func scrub(text, password string) string {
	if password != "" {
		for _, form := range []string{password, url.QueryEscape(password), url.PathEscape(password), url.UserPassword("u", password).String()[2:]} {
			if form != "" {
				text = strings.ReplaceAll(text, form, "xxxxx")
			}
		}
	}
	text = urlPassword.ReplaceAllString(text, "${1}xxxxx@")
	return kvPassword.ReplaceAllString(text, "${1}xxxxx")
}

// deadlockAttempts bounds how often againOnDeadlock runs its function.
const deadlockAttempts = 3

// againOnDeadlock runs fn, and again (deadlockAttempts times in all)
// while PostgreSQL breaks a deadlock by aborting fn's transaction, of
// which nothing was then committed. A revocation of several grants locks
// them in the order its scan meets them, which a batch of redemptions
// holding two of them in the other order can cross (see batcher); the
// operator who asked for it should not see that.
func againOnDeadlock(ctx context.Context, fn func() error) error {
	var err error
	for range deadlockAttempts {
		if err = fn(); pgCode(err) != codeDeadlock || ctx.Err() != nil {
			return err
		}
	}
	return err
}
