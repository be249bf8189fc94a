package domain

import "unicode/utf8"

// IsSafeText reports whether s is human-readable text that is safe to
// store, log and show: valid UTF-8 without C0 or C1 control characters,
// DEL, the line and paragraph separators, or the bidirectional embedding,
// override and isolate marks. Those could forge lines in a log, break a
// header, or make a consent page show a name that reads differently from
// what it is. Every script is welcome. Client metadata (client_name) and
// upstream claims (name) follow this one rule.
func IsSafeText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return false
		}
	}
	return true
}
