package cimd_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/cimd"
	"github.com/oidcproxy/oidcproxy/domain"
)

var errOverLimit = errors.New("this address started too many fetches")

// The per-client-address limit on fetch triggers (AdmitFetch) is asked
// only when a request would start a fetch, and its refusal is not cached:
// another request for the same URL, from an address within its limit,
// fetches it.
func TestAnAdmissionRefusalFetchesNothingAndIsNotCached(t *testing.T) {
	var s *docServer
	s = newDocServer(t, serveDocument(&s, map[string]string{"Cache-Control": "max-age=3600"}, ""))
	var refuse atomic.Bool
	var asked atomic.Int64
	f := newFetcher(t, s, cimd.Options{AdmitFetch: func(context.Context) error {
		asked.Add(1)
		if refuse.Load() {
			return errOverLimit
		}
		return nil
	}})
	id := s.URL + "/client.json"

	refuse.Store(true)
	_, err := f.FetchClientMetadata(t.Context(), id)
	e, ok := domain.AsError(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, domain.CodeTemporarilyUnavailable, e.Code)
	require.ErrorIs(t, err, errOverLimit, "the refusal's cause stays in the chain")
	require.Zero(t, s.Hits("/client.json"), "nothing was fetched")

	refuse.Store(false)
	doc, err := f.FetchClientMetadata(t.Context(), id)
	require.NoError(t, err, "the refusal was not cached")
	require.Equal(t, id, doc.ClientID)
	require.Equal(t, 1, s.Hits("/client.json"))

	refuse.Store(true)
	before := asked.Load()
	_, err = f.FetchClientMetadata(t.Context(), id)
	require.NoError(t, err, "a cached document is served whatever the limit says")
	require.Equal(t, before, asked.Load(), "and the limit is not even asked")
}
