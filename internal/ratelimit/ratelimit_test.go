package ratelimit_test

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/internal/ratelimit"
)

// clock is a time the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

func addrs(t *testing.T, l ratelimit.Limit, c *clock) *ratelimit.Addrs {
	t.Helper()
	a, err := ratelimit.NewAddrs(l, ratelimit.Options{Now: c.Now})
	require.NoError(t, err)
	return a
}

var client = netip.MustParseAddr("192.0.2.10")

func TestABurstIsAdmittedAndTheNextRequestWaitsOneInterval(t *testing.T) {
	c := newClock()
	a := addrs(t, ratelimit.Limit{PerMinute: 60, Burst: 3}, c)
	for i := range 3 {
		ok, _ := a.Allow(client)
		require.True(t, ok, "request %d of the burst", i+1)
	}
	ok, wait := a.Allow(client)
	require.False(t, ok)
	require.Equal(t, time.Second, wait, "one request a second refills one place")

	c.Advance(wait - time.Millisecond)
	ok, wait = a.Allow(client)
	require.False(t, ok, "not yet")
	require.Equal(t, time.Millisecond, wait)

	c.Advance(time.Millisecond)
	ok, _ = a.Allow(client)
	require.True(t, ok, "admitted once the wait is over")
	ok, _ = a.Allow(client)
	require.False(t, ok, "and only that one")
}

func TestTheSustainedRateIsTheConfiguredOne(t *testing.T) {
	c := newClock()
	a := addrs(t, ratelimit.Limit{PerMinute: 120, Burst: 1}, c)
	admitted := 0
	for range 600 { // one minute in steps of 100 ms
		if ok, _ := a.Allow(client); ok {
			admitted++
		}
		c.Advance(100 * time.Millisecond)
	}
	require.Equal(t, 120, admitted)
}

func TestRefusedRequestsDoNotPostponeTheNextAdmission(t *testing.T) {
	c := newClock()
	a := addrs(t, ratelimit.Limit{PerMinute: 60, Burst: 1}, c)
	ok, _ := a.Allow(client)
	require.True(t, ok)
	for range 100 {
		ok, _ = a.Allow(client)
		require.False(t, ok)
	}
	c.Advance(time.Second)
	ok, _ = a.Allow(client)
	require.True(t, ok, "a client hammering while refused is admitted as soon as its interval is over")
}

func TestEachAddressHasItsOwnBudget(t *testing.T) {
	c := newClock()
	a := addrs(t, ratelimit.Limit{PerMinute: 1, Burst: 1}, c)
	for _, s := range []string{"192.0.2.10", "192.0.2.11", "2001:db8:1::1", "2001:db8:2::1"} {
		ok, _ := a.Allow(netip.MustParseAddr(s))
		require.True(t, ok, s)
	}
	for _, s := range []string{"192.0.2.10", "::ffff:192.0.2.11"} {
		ok, _ := a.Allow(netip.MustParseAddr(s))
		require.False(t, ok, "%s: an IPv4-mapped address is the IPv4 address", s)
	}
	ok, _ := a.Allow(netip.MustParseAddr("2001:db8:1::ffff:1"))
	require.False(t, ok, "an IPv6 /64 counts as one client")
	ok, _ = a.Allow(netip.MustParseAddr("fe80::1%eth0"))
	require.True(t, ok, "a link-local address with a zone is an address like another")
	ok, _ = a.Allow(netip.Addr{})
	require.True(t, ok, "an unknown address has a budget of its own")
	ok, _ = a.Allow(netip.Addr{})
	require.False(t, ok, "shared by every request whose address is unknown")
}

func TestStringKeysHaveTheirOwnBudgets(t *testing.T) {
	c := newClock()
	k, err := ratelimit.NewKeys(ratelimit.Limit{PerMinute: 6, Burst: 2}, ratelimit.Options{Now: c.Now})
	require.NoError(t, err)
	for range 2 {
		ok, _ := k.Allow("alice")
		require.True(t, ok)
	}
	ok, wait := k.Allow("alice")
	require.False(t, ok)
	require.Equal(t, 10*time.Second, wait)
	ok, _ = k.Allow("bob")
	require.True(t, ok)
	require.Equal(t, 2, k.Len())
}

func TestALimitThatIsOffAdmitsEverything(t *testing.T) {
	a, err := ratelimit.NewAddrs(ratelimit.Limit{}, ratelimit.Options{})
	require.NoError(t, err)
	require.Nil(t, a)
	for range 1000 {
		ok, _ := a.Allow(client)
		require.True(t, ok)
	}
	k, err := ratelimit.NewKeys(ratelimit.Limit{PerMinute: 0, Burst: 5}, ratelimit.Options{})
	require.NoError(t, err)
	ok, _ := k.Allow("alice")
	require.True(t, ok)
	require.Zero(t, k.Len())
}

func TestLimitsThatCannotBeEnforcedAreRefused(t *testing.T) {
	for _, l := range []ratelimit.Limit{
		{PerMinute: -1, Burst: 1},
		{PerMinute: 10, Burst: 0},
		{PerMinute: 10, Burst: -3},
		{PerMinute: ratelimit.MaxPerMinute + 1, Burst: 1},
		{PerMinute: 10, Burst: ratelimit.MaxBurst + 1},
	} {
		require.Error(t, l.Validate(), "%+v", l)
		_, err := ratelimit.NewAddrs(l, ratelimit.Options{})
		require.Error(t, err, "%+v", l)
	}
	require.NoError(t, ratelimit.Limit{PerMinute: ratelimit.MaxPerMinute, Burst: ratelimit.MaxBurst}.Validate())
	require.Equal(t, "off", ratelimit.Limit{}.String())
	require.Equal(t, "30/min, burst 10", ratelimit.Limit{PerMinute: 30, Burst: 10}.String())
}

func TestRetryAfterIsInWholeSecondsRoundedUp(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                               "1",
		time.Nanosecond:                 "1",
		time.Second:                     "1",
		time.Second + 1:                 "2",
		1500 * time.Millisecond:         "2",
		59*time.Second + 999e6:          "60",
		10 * time.Minute:                "600",
		-5 * time.Second:                "1",
		2*time.Second - time.Nanosecond: "2",
	} {
		require.Equal(t, want, ratelimit.RetryAfterSeconds(d), "%s", d)
	}
	err := fmt.Errorf("token: %w", &ratelimit.Exceeded{RetryAfter: 1500 * time.Millisecond})
	require.ErrorIs(t, err, ratelimit.ErrExceeded)
	var ex *ratelimit.Exceeded
	require.True(t, errors.As(err, &ex))
	require.Equal(t, "rate limit exceeded; retry after 2s", ex.Error())
}

func TestIdleKeysAreForgotten(t *testing.T) {
	c := newClock()
	a := addrs(t, ratelimit.Limit{PerMinute: 60, Burst: 5}, c)
	for i := range 500 {
		ok, _ := a.Allow(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}))
		require.True(t, ok)
	}
	require.Equal(t, 500, a.Len())
	c.Advance(2 * time.Minute)
	// Later traffic reaches every shard (2,000 keys over 32 shards), and
	// each shard's first request after a minute runs its sweep.
	for i := range 2000 {
		a.Allow(netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}))
	}
	require.Equal(t, 2000, a.Len(), "the first 500 keys, whose budget is full again, are dropped")
}

func TestAFloodOfDistinctAddressesCannotGrowTheLimiterBeyondItsBound(t *testing.T) {
	c := newClock()
	const bound = 1024
	a, err := ratelimit.NewAddrs(ratelimit.Limit{PerMinute: 1, Burst: 1}, ratelimit.Options{Now: c.Now, MaxKeys: bound})
	require.NoError(t, err)
	ok, _ := a.Allow(client)
	require.True(t, ok)
	for i := range 20_000 {
		var b [16]byte
		b[0], b[1], b[2], b[3], b[4], b[5] = 0x20, 0x01, 0x0d, 0xb8, byte(i>>16), byte(i>>8)
		b[6], b[7] = byte(i), 1
		a.Allow(netip.AddrFrom16(b)) // a new /64 each time, none of them idle
		require.LessOrEqual(t, a.Len(), bound)
	}
	// The flood may have pushed the first client out; then it starts
	// afresh. Either way it is answered, and memory stayed bounded.
	a.Allow(client)
	require.LessOrEqual(t, a.Len(), bound)
}

func TestConcurrentRequestsOfOneKeyShareOneBudget(t *testing.T) {
	c := newClock() // frozen: no refill while the goroutines race
	a := addrs(t, ratelimit.Limit{PerMinute: 60, Burst: 50}, c)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := a.Allow(client); ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 50, admitted.Load())
}
