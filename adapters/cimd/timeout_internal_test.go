package cimd

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The composition root hands the fetcher the proxy's upstream timeout,
// which may be far longer than a user should wait at /authorize for a
// client's metadata document: the fetcher cuts it to MaxTimeout, and
// keeps a shorter one.
func TestAFetchWaitsAtMostMaxTimeoutWhateverTimeoutItIsGiven(t *testing.T) {
	cases := []struct {
		given, want time.Duration
	}{
		{time.Minute, MaxTimeout},
		{MaxTimeout + time.Millisecond, MaxTimeout},
		{2 * time.Second, 2 * time.Second},
		{0, DefaultTimeout},
	}
	for _, tc := range cases {
		f, err := New(Options{Timeout: tc.given})
		require.NoError(t, err)
		require.Equal(t, tc.want, f.opts.Timeout, "given %s", tc.given)
		require.Equal(t, tc.want, f.client.Timeout, "given %s", tc.given)
	}
}
