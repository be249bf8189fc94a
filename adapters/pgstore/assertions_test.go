package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/domain"
	"github.com/oidcproxy/oidcproxy/test/pgtest"
)

// Consuming one assertion must not wait for another's: another instance
// holding the row of one client's assertion in an open transaction (a
// consumption in flight) leaves every other client's consumption free,
// while a second consumption of that same assertion waits for it and is
// then refused. A table or advisory lock would make the second call below
// wait as well.
func TestConsumingAnAssertionDoesNotWaitForAnUnrelatedOne(t *testing.T) {
	url := pgtest.Schema(t)
	s := openStore(t, url)
	now := time.Now()
	until := now.Add(5 * time.Minute)

	other, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	tx, err := other.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "INSERT INTO assertion_ids (key, expires_ns) VALUES ($1, $2)",
		domain.AssertionReplayKey("client-a", "jti-1"), until.UnixNano())
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	require.NoError(t, s.ConsumeAssertionID(ctx, "client-b", "jti-1", now, until),
		"an unrelated assertion waited for another instance's consumption")

	same := make(chan error, 1)
	go func() { same <- s.ConsumeAssertionID(t.Context(), "client-a", "jti-1", now, until) }()
	select {
	case err := <-same:
		t.Fatalf("the same assertion did not wait for the consumption in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, tx.Commit(t.Context()))
	require.ErrorIs(t, <-same, domain.ErrAlreadyConsumed)
}
