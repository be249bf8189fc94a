package ratelimit

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"
)

// addrKey is a client address as a limiter counts it: an IPv4 address, or
// the /64 prefix of an IPv6 address (one subscriber's network: a host that
// has a /64 to itself could otherwise make up a new address for every
// request). The tags keep the three kinds apart.
type addrKey struct{ hi, lo uint64 }

const (
	tagIPv4    = 1 << 32
	tagInvalid = 1 << 33
)

func addrKeyOf(a netip.Addr) addrKey {
	a = a.Unmap()
	switch {
	case a.Is4():
		b := a.As4()
		return addrKey{lo: tagIPv4 | uint64(binary.BigEndian.Uint32(b[:]))}
	case a.Is6():
		b := a.As16()
		return addrKey{hi: binary.BigEndian.Uint64(b[:8])}
	default:
		// Requests whose address is unknown share one key.
		return addrKey{lo: tagInvalid}
	}
}

// Addrs is a limiter keyed by client address: IPv4 addresses one by one,
// IPv6 addresses by their /64 prefix.
type Addrs struct{ l *limiter[addrKey] }

// NewAddrs builds an address-keyed limiter. A limit that is off yields a
// nil *Addrs, which admits everything.
func NewAddrs(l Limit, opts Options) (*Addrs, error) {
	// A per-limiter seed spreads the keys over the shards in an order
	// nobody outside can predict, so that no set of addresses piles onto
	// one shard's mutex.
	seed := rand.Uint64() | 1
	lim, err := newLimiter(l, opts, func(k addrKey) uint64 {
		h := (k.hi ^ seed) * 0x9e3779b97f4a7c15
		h = (h ^ k.lo ^ h>>29) * 0xbf58476d1ce4e5b9
		return h ^ h>>32
	})
	if err != nil || lim == nil {
		return nil, err
	}
	return &Addrs{l: lim}, nil
}

// Allow admits or refuses one request from addr; a refusal says how long
// to wait. A nil *Addrs admits everything.
func (a *Addrs) Allow(addr netip.Addr) (bool, time.Duration) {
	if a == nil {
		return true, 0
	}
	return a.l.allow(addrKeyOf(addr))
}

// Len returns how many keys the limiter tracks.
func (a *Addrs) Len() int {
	if a == nil {
		return 0
	}
	return a.l.size()
}
