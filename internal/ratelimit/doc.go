// Package ratelimit counts requests per key (a client address, a subject)
// and refuses those beyond a rate, with a memory bound that no flood of
// distinct keys can break.
//
// The algorithm is GCRA, the generic cell rate algorithm: a key's whole
// state is one number, the theoretical arrival time (TAT) of its next
// request. A request at now is admitted when max(TAT, now) + interval lies
// no more than burst × interval after now, and then moves TAT there; a
// refused request learns exactly how long to wait. It behaves like a token
// bucket holding burst tokens and refilled at the rate, without the
// floating-point refill arithmetic, and a key whose TAT has passed is
// indistinguishable from a key never seen: forgetting it loses nothing.
// That is what bounds the memory. Each limiter keeps its keys in shards
// (a map and a mutex each, so parallel requests rarely contend); a shard
// drops its idle keys about once a minute, and one that reaches its share
// of the key bound drops its idle keys at once and, if a flood of live
// keys still fills it, a quarter of its keys picked at random (a key so
// forgotten starts again with a full burst: under such a flood the limit
// yields before memory does).
//
// A check costs one clock read, one hash, and one map access under a
// shard's mutex, and allocates nothing once its key is known (a new
// key may grow its shard's map).
//
// Limits are per process: instances behind a load balancer each count
// their own requests.
package ratelimit
