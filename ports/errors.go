package ports

import "errors"

// ErrUnavailable marks an error of an outbound dependency (a store's
// database, most of all) that cannot be reached or did not answer in time:
// the request may succeed if retried later. Adapters wrap it (errors.Is
// finds it) next to the cause, so the use cases can answer
// temporarily_unavailable (HTTP 503) instead of server_error (500), and a
// readiness probe can tell "down" from "broken".
var ErrUnavailable = errors.New("temporarily unavailable")
