package cimd_test

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/cimd"
)

const jwks = `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`

func serveJWKS(header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		for k, v := range header {
			w.Header().Set(k, v)
		}
		_, _ = fmt.Fprint(w, body)
	}
}

func TestAKeySetIsFetchedAndCachedByMaxAge(t *testing.T) {
	s := newDocServer(t, serveJWKS(map[string]string{"Cache-Control": "max-age=600"}, jwks))
	c := &clock{now: time.Now()}
	f := newFetcher(t, s, cimd.Options{Now: c.Now})
	uri := s.URL + "/jwks.json"

	set, err := f.FetchJWKS(t.Context(), uri, false)
	require.NoError(t, err)
	require.JSONEq(t, jwks, string(set))
	set[0] = 'X' // the caller's copy is its own
	again, err := f.FetchJWKS(t.Context(), uri, false)
	require.NoError(t, err)
	require.JSONEq(t, jwks, string(again))
	require.Equal(t, 1, s.Hits("/jwks.json"))

	c.Advance(10 * time.Minute)
	_, err = f.FetchJWKS(t.Context(), uri, false)
	require.NoError(t, err)
	require.Equal(t, 2, s.Hits("/jwks.json"), "expired after its max-age")
}

func TestAForcedRefreshOfAKeySetWaitsForTheMinimumAge(t *testing.T) {
	s := newDocServer(t, serveJWKS(map[string]string{"Cache-Control": "max-age=3600"}, jwks))
	c := &clock{now: time.Now()}
	f := newFetcher(t, s, cimd.Options{Now: c.Now})
	uri := s.URL + "/jwks.json"

	_, err := f.FetchJWKS(t.Context(), uri, false)
	require.NoError(t, err)
	for range 5 {
		_, err = f.FetchJWKS(t.Context(), uri, true)
		require.NoError(t, err)
	}
	require.Equal(t, 1, s.Hits("/jwks.json"), "unknown key ids cannot make every request a fetch")
	c.Advance(cimd.DefaultMinTTL)
	_, err = f.FetchJWKS(t.Context(), uri, true)
	require.NoError(t, err)
	require.Equal(t, 2, s.Hits("/jwks.json"))
}

func TestAKeySetFetchHasTheDocumentGuards(t *testing.T) {
	for name, tc := range map[string]struct {
		handler http.HandlerFunc
		want    error
	}{
		"not JSON": {handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = fmt.Fprint(w, jwks)
		}, want: cimd.ErrContentType},
		"not a key set": {handler: serveJWKS(nil, `{"kty":"EC"}`), want: cimd.ErrNotJWKS},
		"a redirect": {handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://127.0.0.1:1/elsewhere", http.StatusFound)
		}, want: cimd.ErrRedirect},
		"too large": {handler: serveJWKS(nil, `{"keys":[],"pad":"`+string(make([]byte, cimd.DefaultMaxJWKSBytes))+`"}`), want: cimd.ErrTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			s := newDocServer(t, tc.handler)
			f := newFetcher(t, s, cimd.Options{})
			_, err := f.FetchJWKS(t.Context(), s.URL+"/jwks.json", false)
			require.ErrorIs(t, err, tc.want)
		})
	}

	t.Run("http and private addresses", func(t *testing.T) {
		s := newDocServer(t, serveJWKS(nil, jwks))
		f, err := cimd.New(cimd.Options{RootCAs: s.roots(), Timeout: 3 * time.Second})
		require.NoError(t, err)
		port := s.Listener.Addr().(*net.TCPAddr).Port
		_, err = f.FetchJWKS(t.Context(), fmt.Sprintf("https://localhost:%d/jwks.json", port), false)
		require.ErrorIs(t, err, cimd.ErrAddressRefused)
		_, err = f.FetchJWKS(t.Context(), fmt.Sprintf("http://localhost:%d/jwks.json", port), false)
		require.ErrorIs(t, err, cimd.ErrURL)
		require.Zero(t, s.conns.Load(), "no connection reached the listener")
	})
}
