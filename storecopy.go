package oidcproxy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/oidcproxy/oidcproxy/adapters/boltstore"
	"github.com/oidcproxy/oidcproxy/adapters/pgstore"
	"github.com/oidcproxy/oidcproxy/adapters/seal"
	"github.com/oidcproxy/oidcproxy/ports"
)

// StoreCopy is what `oidcproxy store copy` copies, and where: every live
// record of one store (a bbolt file or a PostgreSQL database) into an
// empty other, so that a deployment can move between them without its
// users signing in again.
type StoreCopy struct {
	// From and To each name a store: a PostgreSQL URL (postgres:// or
	// postgresql://) or else the path of a bbolt file. The source must
	// exist; a bbolt destination must not (it is created), a database
	// destination must hold no oidcproxy records (its schema is created or
	// migrated as serve would).
	From, To string
	// EncryptionKey is the key the source's sealed values were sealed
	// with: the copy moves them sealed, so every instance on the
	// destination needs this same key, and the copy refuses a key that
	// cannot open them.
	EncryptionKey seal.MasterKey
	// DatabaseTimeout bounds connecting to a database (and its store's
	// ordinary calls); zero is pgstore's default.
	DatabaseTimeout time.Duration
	// Clock judges which records have expired (and are left behind).
	Clock ports.Clock
}

// StoreCopyResult is what a successful copy moved.
type StoreCopyResult struct {
	// Copied counts the records copied, by kind.
	Copied ports.RecordCounts
	// From and To describe the two stores for people, without a password.
	From, To string
}

// Errors of CopyStore that `oidcproxy store copy` explains.
var (
	// ErrWrongEncryptionKey: the key cannot open the source's sealed
	// values; nothing was written.
	ErrWrongEncryptionKey = errors.New("the encryption key cannot open the source's sealed values")
	// ErrInstancesRunning: instances of oidcproxy are connected to a
	// database the copy reads or writes; nothing was written.
	ErrInstancesRunning = errors.New("oidcproxy instances are connected to the database")
	// ErrNoSourceData: the source is a database without oidcproxy's schema
	// or a path without a store file.
	ErrNoSourceData = errors.New("there is no oidcproxy store there")
	// ErrCopyDiffers: the copy was written, but reading it back found a
	// difference from the source. It must not be used.
	ErrCopyDiffers = errors.New("the copy differs from the source")
)

// copyApplicationName is the application_name of the copy's own
// connections, so that they are told apart from instances' (which use
// pgstore's default, "oidcproxy", unless their URL names another).
const copyApplicationName = "oidcproxy-store-copy"

// storeLocation is one side of a copy.
type storeLocation struct {
	raw      string
	database bool
	// instanceName is the application_name instances connecting with this
	// URL use.
	instanceName string
}

func parseLocation(raw string) storeLocation {
	raw = strings.TrimSpace(raw)
	loc := storeLocation{raw: raw}
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		loc.database = true
		loc.instanceName = "oidcproxy"
		if u, err := url.Parse(raw); err == nil {
			if name := u.Query().Get("application_name"); name != "" {
				loc.instanceName = name
			}
		}
	}
	return loc
}

// String describes the store without what its URL may hold of secrets.
func (l storeLocation) String() string {
	if !l.database {
		return "bbolt file " + l.raw
	}
	u, err := url.Parse(l.raw)
	if err != nil {
		return "PostgreSQL database (the URL does not parse)"
	}
	desc := "PostgreSQL database " + u.Host + u.Path
	if sp := u.Query().Get("search_path"); sp != "" {
		desc += " (schema " + sp + ")"
	}
	return desc
}

// copyURL is the database URL with the copy's own application_name.
func (l storeLocation) copyURL() string {
	u, err := url.Parse(l.raw)
	if err != nil {
		return l.raw // pgstore reports it, without quoting it
	}
	q := u.Query()
	q.Set("application_name", copyApplicationName)
	u.RawQuery = q.Encode()
	return u.String()
}

// copySource is an opened source store.
type copySource interface {
	ports.KeyStore
	ports.Exporter
}

// CopyStore copies every live record from c.From into c.To (see StoreCopy)
// in one atomic step on the destination, after checking that nothing else
// uses either store, that c.EncryptionKey opens the source's sealed values,
// and before anything is written that the destination is empty. It then
// reads both stores again and compares them record by record.
func CopyStore(ctx context.Context, c StoreCopy) (StoreCopyResult, error) {
	from, to := parseLocation(c.From), parseLocation(c.To)
	res := StoreCopyResult{From: from.String(), To: to.String()}
	if from.raw == "" || to.raw == "" {
		return res, errors.New("both a source and a destination are needed")
	}
	if sameStore(from, to) {
		return res, errors.New("the source and the destination are the same store")
	}
	sealer, err := seal.NewFromMaster(c.EncryptionKey)
	if err != nil {
		return res, err
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	for _, loc := range []storeLocation{from, to} {
		if err := noInstances(ctx, loc, c.DatabaseTimeout); err != nil {
			return res, err
		}
	}
	src, closeSrc, err := openSource(ctx, from, c.DatabaseTimeout)
	if err != nil {
		return res, err
	}
	defer closeSrc()
	keys, err := src.ListKeys(ctx)
	if err != nil {
		return res, fmt.Errorf("read the source's signing keys: %w", err)
	}
	for _, k := range keys {
		if err := openable(sealer, ports.Record{SigningKey: &k}); err != nil {
			return res, err
		}
	}

	now := c.Clock.Now()
	records := checkedSeals(src.Export(ctx, now), sealer)
	var verify func() error
	if to.database {
		dst, err := pgstore.Open(ctx, pgstore.Options{URL: to.copyURL(), MaxConns: 2, Timeout: c.DatabaseTimeout})
		if err != nil {
			return res, err
		}
		defer dst.Close()
		if res.Copied, err = dst.Import(ctx, records); err != nil {
			return res, err
		}
		verify = func() error { return sameRecords(ctx, src.Export(ctx, now), dst.Export(ctx, now)) }
	} else {
		if res.Copied, err = boltstore.ImportFile(ctx, to.raw, records); err != nil {
			return res, err
		}
		verify = func() error {
			dst, err := boltstore.Open(boltstore.Options{Path: to.raw})
			if err != nil {
				return err
			}
			defer dst.Close()
			return sameRecords(ctx, src.Export(ctx, now), dst.Export(ctx, now))
		}
	}
	if err := verify(); err != nil {
		return res, fmt.Errorf("%w: the copy was written, but reading it back found that %w; "+
			"do not start instances on it: remove it and copy again", ErrCopyDiffers, err)
	}
	return res, nil
}

// sameStore reports whether two locations name one store: the same file,
// or the same URL.
func sameStore(a, b storeLocation) bool {
	if a.database || b.database {
		return a.database == b.database && a.raw == b.raw
	}
	ai, aerr := os.Stat(a.raw)
	bi, berr := os.Stat(b.raw)
	if aerr == nil && berr == nil {
		return os.SameFile(ai, bi)
	}
	return filepath.Clean(a.raw) == filepath.Clean(b.raw)
}

// noInstances refuses a database that instances are connected to. A bbolt
// file needs no such check: opening it takes its lock.
//
// Sessions are counted again for up to sessionsSettle before the copy is
// refused: the server ends a session after its client's goodbye, not with
// it, so an instance (or an oidcproxy command) that has just exited is
// still listed for a moment.
func noInstances(ctx context.Context, loc storeLocation, timeout time.Duration) error {
	if !loc.database {
		return nil
	}
	deadline := time.Now().Add(sessionsSettle)
	for {
		n, err := pgstore.Sessions(ctx, pgstore.Options{URL: loc.copyURL(), Timeout: timeout}, loc.instanceName)
		switch {
		case err != nil:
			return err
		case n == 0:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%w: %d connection(s) named %q are open to the %s", ErrInstancesRunning, n, loc.instanceName, loc)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(sessionsSettle / 10):
		}
	}
}

// sessionsSettle is how long noInstances waits for sessions of processes
// that have just exited to end.
const sessionsSettle = 2 * time.Second

// openSource opens the source store: a bbolt file that must exist (and
// that no server holds), or a database that must hold oidcproxy's schema.
func openSource(ctx context.Context, loc storeLocation, timeout time.Duration) (copySource, func(), error) {
	if loc.database {
		st, err := pgstore.Inspect(ctx, pgstore.Options{URL: loc.copyURL(), Timeout: timeout})
		if err != nil {
			return nil, nil, err
		}
		if st.SchemaVersion == 0 {
			return nil, nil, fmt.Errorf("%w: the %s has no oidcproxy schema", ErrNoSourceData, loc)
		}
		s, err := pgstore.Open(ctx, pgstore.Options{URL: loc.copyURL(), MaxConns: 2, Timeout: timeout})
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	if _, err := os.Stat(loc.raw); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: no file at %s", ErrNoSourceData, loc.raw)
	}
	s, err := boltstore.Open(boltstore.Options{Path: loc.raw, Timeout: LockWait})
	if err != nil {
		return nil, nil, err
	}
	return s, func() { _ = s.Close() }, nil
}

// openable checks that sealer opens the record's sealed value, if it has
// one: a signing key's private half or a grant's upstream tokens, each
// bound to its id as the service seals them.
func openable(sealer ports.Sealer, r ports.Record) error {
	switch {
	case r.SigningKey != nil:
		if _, err := sealer.Open(r.SigningKey.SealedPrivate, []byte(r.SigningKey.ID)); err != nil {
			return fmt.Errorf("%w: it does not open the private half of signing key %s", ErrWrongEncryptionKey, r.SigningKey.ID)
		}
	case r.Grant != nil && len(r.Grant.SealedUpstream) > 0:
		if _, err := sealer.Open(r.Grant.SealedUpstream, []byte(r.Grant.ID)); err != nil {
			return fmt.Errorf("%w: it does not open the upstream tokens of a grant", ErrWrongEncryptionKey)
		}
	}
	return nil
}

// checkedSeals passes records on, ending the sequence with an error at the
// first sealed value that sealer cannot open: a destination built with
// such a value would fail later, at a user's refresh.
func checkedSeals(records iter.Seq2[ports.Record, error], sealer ports.Sealer) iter.Seq2[ports.Record, error] {
	return func(yield func(ports.Record, error) bool) {
		for r, err := range records {
			if err == nil {
				err = openable(sealer, r)
			}
			if err != nil {
				yield(ports.Record{}, err)
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// sameRecords compares two exports record by record: both come in the
// same order when they hold the same records.
func sameRecords(ctx context.Context, a, b iter.Seq2[ports.Record, error]) error {
	nextB, stop := iter.Pull2(b)
	defer stop()
	n := 0
	for ra, err := range a {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rb, errB, ok := nextB()
		if errB != nil {
			return errB
		}
		if !ok {
			return fmt.Errorf("the copy ends after %d records", n)
		}
		if !reflect.DeepEqual(ra, rb) {
			return fmt.Errorf("record %d (a %s) differs", n+1, ra.Kind())
		}
		n++
	}
	if _, errB, ok := nextB(); errB != nil {
		return errB
	} else if ok {
		return fmt.Errorf("the copy holds more than the source's %d records", n)
	}
	return nil
}
