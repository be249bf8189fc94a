package domain

// ConsentMode decides when the proxy shows its consent page.
type ConsentMode string

// The consent modes.
const (
	// ConsentAlways shows the page on every authorization (the default: with
	// dynamic registration any site can register a client, so the user must
	// see who is asking, or the proxy becomes a confused deputy).
	ConsentAlways ConsentMode = "always"
	// ConsentRemember skips the page when this browser approved the same
	// client for the same scopes before.
	ConsentRemember ConsentMode = "remember"
	// ConsentOff never shows the page. Only safe when registration is closed
	// to trusted clients.
	ConsentOff ConsentMode = "off"
)

// Valid reports whether m is a known consent mode.
func (m ConsentMode) Valid() bool {
	return m == ConsentAlways || m == ConsentRemember || m == ConsentOff
}
