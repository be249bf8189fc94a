package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limit is a rate with a burst: Burst requests may come at once, then one
// every minute / PerMinute. A Limit with PerMinute 0 is off.
type Limit struct {
	// PerMinute is the sustained rate; 0 turns the limit off.
	PerMinute int
	// Burst is how many requests may arrive at once; at least 1 when the
	// limit is on.
	Burst int
}

// Bounds of a Limit: a higher rate than MaxPerMinute (a million a minute)
// would not be a limit, and the GCRA arithmetic stays far from overflow
// below them.
const (
	MaxPerMinute = 1_000_000
	MaxBurst     = 1_000_000
)

// Off reports whether the limit admits everything.
func (l Limit) Off() bool { return l.PerMinute == 0 }

// Validate reports a limit that cannot be enforced.
func (l Limit) Validate() error {
	switch {
	case l.PerMinute < 0 || l.PerMinute > MaxPerMinute:
		return fmt.Errorf("the rate must be between 0 (off) and %d a minute, got %d", MaxPerMinute, l.PerMinute)
	case l.Off():
		return nil
	case l.Burst < 1 || l.Burst > MaxBurst:
		return fmt.Errorf("the burst must be between 1 and %d, got %d", MaxBurst, l.Burst)
	}
	return nil
}

// String renders the limit as the documentation states them.
func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	return fmt.Sprintf("%d/min, burst %d", l.PerMinute, l.Burst)
}

// Options tune a limiter; zero values take the defaults.
type Options struct {
	// Now tells the time; nil means the process's monotonic clock, which
	// is what a limiter needs (it measures intervals, not dates, and must
	// not jump with the wall clock) and costs half a time.Now call. Tests
	// pass a clock they move.
	Now func() time.Time
	// MaxKeys bounds the keys tracked at once (DefaultMaxKeys).
	MaxKeys int
}

// DefaultMaxKeys bounds a limiter's keys: a full address limiter holds
// about 5 MiB (measured: keys, TATs and the maps' spare room), a subject
// limiter about 7 MiB with subjects of some 40 bytes.
const DefaultMaxKeys = 1 << 16

// shards is the number of independently locked parts of a limiter, a power
// of two. More than the cores that run checks at once makes two of them
// rarely meet on one mutex.
const shards = 32

// sweepEvery is how often a shard drops its idle keys.
const sweepEvery = int64(time.Minute)

// Exceeded is the error of a refused request: RetryAfter is how long until
// the same key is admitted again.
type Exceeded struct {
	RetryAfter time.Duration
}

// Error implements error.
func (e *Exceeded) Error() string {
	return "rate limit exceeded; retry after " + RetryAfterSeconds(e.RetryAfter) + "s"
}

// ErrExceeded matches every *Exceeded with errors.Is.
var ErrExceeded = errors.New("rate limit exceeded")

// Is makes errors.Is(err, ErrExceeded) find an *Exceeded.
func (e *Exceeded) Is(target error) bool { return target == ErrExceeded }

// RetryAfterSeconds renders d as the value of a Retry-After header (RFC
// 9110 10.2.3): whole seconds, rounded up, at least 1, so that a client
// that waits as told is admitted.
func RetryAfterSeconds(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	return strconv.FormatInt(int64(max(s, 1)), 10)
}

// limiter is the GCRA over keys of type K, which hash spreads over the
// shards.
type limiter[K comparable] struct {
	interval  int64 // ns between two requests at the sustained rate
	tolerance int64 // burst × interval: how far TAT may run ahead of now
	perShard  int   // the key bound of one shard
	hash      func(K) uint64
	// own, when set, copies a key before the shard keeps it, so that a
	// key sliced from a larger buffer does not keep the buffer alive.
	own func(K) K
	// clock is Options.Now; nil reads the monotonic clock.
	clock  func() time.Time
	epoch  time.Time
	shards [shards]shard[K]
}

// shard is one part of a limiter's keys. The padding keeps two shards'
// mutexes off one cache line.
type shard[K comparable] struct {
	mu sync.Mutex
	// tats holds each key's theoretical arrival time, in ns since the
	// limiter's epoch.
	tats map[K]int64
	// nextSweep is when the shard next drops its idle keys.
	nextSweep int64
	// peak is the most keys the map has held since it was last made: Go
	// maps never shrink, so a map that held many more keys than it now
	// does is copied into a smaller one.
	peak int
	_    [64]byte
}

func newLimiter[K comparable](l Limit, opts Options, hash func(K) uint64) (*limiter[K], error) {
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	if l.Off() {
		return nil, nil
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	epoch := time.Now()
	if opts.Now != nil {
		epoch = opts.Now()
	}
	interval := int64(time.Minute) / int64(l.PerMinute)
	lim := &limiter[K]{
		interval:  interval,
		tolerance: int64(l.Burst) * interval,
		perShard:  max(opts.MaxKeys/shards, 4),
		hash:      hash,
		clock:     opts.Now,
		epoch:     epoch,
	}
	for i := range lim.shards {
		lim.shards[i].tats = map[K]int64{}
		lim.shards[i].nextSweep = sweepEvery
	}
	return lim, nil
}

// allow admits or refuses one request of key. On a refusal it returns how
// long until the key is admitted again.
func (l *limiter[K]) allow(key K) (bool, time.Duration) {
	now := l.now()
	s := &l.shards[l.hash(key)&(shards-1)]
	s.mu.Lock()
	if now >= s.nextSweep {
		s.sweep(now)
	}
	tat, known := s.tats[key]
	tat = max(tat, now)
	next := tat + l.interval
	if ahead := next - now; ahead > l.tolerance {
		s.mu.Unlock()
		return false, time.Duration(ahead - l.tolerance)
	}
	if !known {
		if len(s.tats) >= l.perShard {
			s.makeRoom(now, l.perShard)
		}
		if l.own != nil {
			key = l.own(key)
		}
	}
	s.tats[key] = next
	s.peak = max(s.peak, len(s.tats))
	s.mu.Unlock()
	return true, 0
}

// now is the time in ns since the limiter's epoch.
func (l *limiter[K]) now() int64 {
	if l.clock == nil {
		return int64(time.Since(l.epoch)) // monotonic: one clock read
	}
	return int64(l.clock().Sub(l.epoch))
}

// sweep drops the keys whose TAT has passed: they would be admitted with a
// full burst anyway. Called with s.mu held.
func (s *shard[K]) sweep(now int64) {
	for k, tat := range s.tats {
		if tat <= now {
			delete(s.tats, k)
		}
	}
	s.nextSweep = now + sweepEvery
	if s.peak >= 256 && len(s.tats) < s.peak/4 {
		small := make(map[K]int64, len(s.tats)*2)
		for k, tat := range s.tats {
			small[k] = tat
		}
		s.tats = small
		s.peak = len(small)
	}
}

// makeRoom frees a full shard for a new key: its idle keys go first, and
// when live keys fill it, random ones go until a quarter is free, so that
// the next new keys cost nothing. Called with s.mu held.
func (s *shard[K]) makeRoom(now int64, limit int) {
	s.sweep(now)
	target := limit - limit/4
	for k := range s.tats { // map iteration starts at a random key
		if len(s.tats) <= target {
			break
		}
		delete(s.tats, k)
	}
}

// size counts the keys tracked, for tests.
func (l *limiter[K]) size() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}

// Keys is a limiter keyed by strings (a subject).
type Keys struct{ l *limiter[string] }

// NewKeys builds a string-keyed limiter. A limit that is off yields a nil
// *Keys, which admits everything.
func NewKeys(l Limit, opts Options) (*Keys, error) {
	seed := maphash.MakeSeed()
	lim, err := newLimiter(l, opts, func(k string) uint64 { return maphash.String(seed, k) })
	if err != nil || lim == nil {
		return nil, err
	}
	lim.own = strings.Clone
	return &Keys{l: lim}, nil
}

// Allow admits or refuses one request of key; a refusal says how long to
// wait. A nil *Keys admits everything.
func (k *Keys) Allow(key string) (bool, time.Duration) {
	if k == nil {
		return true, 0
	}
	return k.l.allow(key)
}

// Len returns how many keys the limiter tracks.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return k.l.size()
}
