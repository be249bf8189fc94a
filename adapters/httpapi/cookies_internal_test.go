package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These tests are internal: the cookie jar is unexported and its contract
// (signed, bound to the name, expiring) is what the consent and callback
// handlers rely on.

func roundTrip(t *testing.T, j cookieJar, set func(w http.ResponseWriter)) *http.Request {
	t.Helper()
	rec := httptest.NewRecorder()
	set(rec)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	return req
}

func TestSignedCookiesRoundTripAndRefuseTampering(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	j := newCookieJar(key, true)
	req := roundTrip(t, j, func(w http.ResponseWriter) { j.set(w, "b-x", "secret value", time.Minute) })
	got, ok := j.get(req, "b-x")
	require.True(t, ok)
	require.Equal(t, "secret value", got)

	c, err := req.Cookie("__Host-oidcproxy-b-x")
	require.NoError(t, err)
	require.True(t, c.Value != "")

	// Moved to another name: refused (the name is inside the MAC).
	moved := httptest.NewRequest(http.MethodGet, "/", nil)
	moved.AddCookie(&http.Cookie{Name: "__Host-oidcproxy-b-y", Value: c.Value})
	_, ok = j.get(moved, "b-y")
	require.False(t, ok)

	// Any flipped character: refused.
	for i := range len(c.Value) {
		b := []byte(c.Value)
		b[i] ^= 0x01
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: c.Name, Value: string(b)})
		_, ok := j.get(r, "b-x")
		require.False(t, ok, "flip at %d", i)
	}

	// Another key: refused.
	other := newCookieJar([]byte(strings.Repeat("o", 32)), true)
	_, ok = other.get(req, "b-x")
	require.False(t, ok)
}

func TestExpiredCookiesAreRefusedEvenIfTheBrowserKeepsThem(t *testing.T) {
	j := newCookieJar([]byte(strings.Repeat("k", 32)), false)
	req := roundTrip(t, j, func(w http.ResponseWriter) { j.set(w, "c", "v", -time.Second) })
	_, ok := j.get(req, "c")
	require.False(t, ok)
}

func TestCookieAttributesDependOnTheScheme(t *testing.T) {
	for _, secure := range []bool{true, false} {
		j := newCookieJar([]byte(strings.Repeat("k", 32)), secure)
		rec := httptest.NewRecorder()
		j.set(rec, "c", "v", time.Minute)
		c := rec.Result().Cookies()[0]
		require.Equal(t, secure, c.Secure)
		require.Equal(t, secure, strings.HasPrefix(c.Name, "__Host-"))
		require.True(t, c.HttpOnly)
		require.Equal(t, http.SameSiteLaxMode, c.SameSite, "never Strict: the IdP's redirect back must carry it")
		require.Equal(t, "/", c.Path)
		require.Empty(t, c.Domain)
	}
}

func TestClientAuthReadsBasicOrBodyButNeverBoth(t *testing.T) {
	form := func(v string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(v))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		require.NoError(t, r.ParseForm())
		return r
	}
	r := form("client_id=a")
	a, err := clientAuth(r, r.PostForm)
	require.NoError(t, err)
	require.Equal(t, "a", a.ClientID)
	require.EqualValues(t, "none", a.Method)

	r = form("")
	r.SetBasicAuth("id%3Awith%20colon", "p%40ss")
	a, err = clientAuth(r, r.PostForm)
	require.NoError(t, err)
	require.Equal(t, "id:with colon", a.ClientID, "RFC 6749 2.3.1 form-encodes the credentials")
	require.Equal(t, "p@ss", a.Secret)

	r = form("client_id=a&client_secret=b")
	r.SetBasicAuth("a", "b")
	_, err = clientAuth(r, r.PostForm)
	require.Error(t, err)

	r = form("")
	r.Header.Set("Authorization", "Bearer x")
	_, err = clientAuth(r, r.PostForm)
	require.Error(t, err)
}
