package oidcproxy

import (
	"crypto/rand"
	"encoding/base64"
	"runtime/debug"
	"time"

	"github.com/oidcproxy/oidcproxy/ports"
)

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// CryptoRandom draws from the operating system's CSPRNG.
type CryptoRandom struct{}

// Token returns 256 random bits, base64url without padding. crypto/rand
// never fails on supported platforms (it would crash the program instead),
// so there is no error to return.
func (CryptoRandom) Token() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var (
	_ ports.Clock  = SystemClock{}
	_ ports.Random = CryptoRandom{}
)

// Version is the module version from the build information, "(devel)" for
// a local build. The command may override what it prints (-X main.version).
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
