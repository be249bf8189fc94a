package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cookieJar writes and reads oidcproxy's signed cookies. Over https they
// carry the __Host- prefix (host-only, Secure, Path=/, so no subdomain can
// plant or overwrite them); over plain-http loopback development the prefix
// and Secure are impossible, so a plain name is used. SameSite=Lax, never
// Strict: Strict cookies are withheld on the top-level redirect back from
// the IdP, which is exactly when the binding cookie is needed.
type cookieJar struct {
	key    []byte
	secure bool
}

func newCookieJar(key []byte, secure bool) cookieJar {
	return cookieJar{key: key, secure: secure}
}

func (j cookieJar) name(base string) string {
	if j.secure {
		return "__Host-oidcproxy-" + base
	}
	return "oidcproxy-" + base
}

// mac authenticates the cookie's name together with its payload, so a value
// cannot be moved from one cookie to another.
func (j cookieJar) mac(name, payload string) []byte {
	m := hmac.New(sha256.New, j.key)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// set stores value (any string) for maxAge, signed and with its expiry
// inside the signature, so a copied cookie dies on time even if a browser
// keeps it.
func (j cookieJar) set(w http.ResponseWriter, base, value string, maxAge time.Duration) {
	name := j.name(base)
	exp := time.Now().Add(maxAge).Unix()
	payload := strconv.FormatInt(exp, 10) + "." + base64.RawURLEncoding.EncodeToString([]byte(value))
	sig := base64.RawURLEncoding.EncodeToString(j.mac(name, payload))
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    payload + "." + sig,
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		Secure:   j.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// get returns the verified value of a cookie, or false when it is absent,
// forged, moved or expired.
func (j cookieJar) get(r *http.Request, base string) (string, bool) {
	name := j.name(base)
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > 4096 {
		return "", false
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return "", false
	}
	payload, sig := c.Value[:i], c.Value[i+1:]
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(got, j.mac(name, payload)) {
		return "", false
	}
	expStr, enc, ok := strings.Cut(payload, ".")
	if !ok {
		return "", false
	}
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil || time.Now().Unix() >= exp {
		return "", false
	}
	value, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	return string(value), true
}

// clear deletes a cookie.
func (j cookieJar) clear(w http.ResponseWriter, base string) {
	http.SetCookie(w, &http.Cookie{
		Name:     j.name(base),
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		Secure:   j.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}
