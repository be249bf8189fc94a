package gencache_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/internal/gencache"
)

type cache = gencache.Cache[string, int]

func put(k string, v int) func(*cache) { return func(c *cache) { c.Put(k, v) } }
func get(k string) func(*cache)        { return func(c *cache) { c.Get(k) } }
func forget(k string) func(*cache)     { return func(c *cache) { c.Forget(k) } }
func forgetAll(c *cache)               { c.ForgetAll() }

// state is where every key sits after a step: "current", "old" or absent,
// with its value.
type state struct{ cur, old map[string]int }

func TestTheCacheKeepsWhatIsReadAndForgetsTheRestInTwoGenerations(t *testing.T) {
	tests := []struct {
		name  string
		steps []func(*cache)
		want  state // after the last step; every generation holds at most 2
	}{
		{
			name:  "new entries go to the current generation",
			steps: []func(*cache){put("a", 1), put("b", 2)},
			want:  state{cur: map[string]int{"a": 1, "b": 2}},
		},
		{
			name:  "a full current generation becomes the old one",
			steps: []func(*cache){put("a", 1), put("b", 2), put("c", 3)},
			want:  state{cur: map[string]int{"c": 3}, old: map[string]int{"a": 1, "b": 2}},
		},
		{
			name:  "the old generation is dropped at the next turnover",
			steps: []func(*cache){put("a", 1), put("b", 2), put("c", 3), put("d", 4), put("e", 5)},
			want:  state{cur: map[string]int{"e": 5}, old: map[string]int{"c": 3, "d": 4}},
		},
		{
			name:  "a read in the old generation moves the entry to the current one",
			steps: []func(*cache){put("a", 1), put("b", 2), put("c", 3), get("a")},
			want:  state{cur: map[string]int{"a": 1, "c": 3}, old: map[string]int{"b": 2}},
		},
		{
			name:  "so an entry that is read survives the turnover that drops its neighbours",
			steps: []func(*cache){put("a", 1), put("b", 2), put("c", 3), get("a"), put("d", 4), put("e", 5)},
			want:  state{cur: map[string]int{"d": 4, "e": 5}, old: map[string]int{"a": 1, "c": 3}},
		},
		{
			name:  "a read in the current generation moves nothing",
			steps: []func(*cache){put("a", 1), put("b", 2), put("c", 3), get("c"), get("missing")},
			want:  state{cur: map[string]int{"c": 3}, old: map[string]int{"a": 1, "b": 2}},
		},
		{
			name:  "replacing a key in a full generation does not turn it over",
			steps: []func(*cache){put("a", 1), put("b", 2), put("b", 20)},
			want:  state{cur: map[string]int{"a": 1, "b": 20}},
		},
		{
			name:  "a new value for an old key replaces it in the current generation",
			steps: []func(*cache){put("a", 1), put("b", 2), put("c", 3), put("a", 10)},
			want:  state{cur: map[string]int{"a": 10, "c": 3}, old: map[string]int{"b": 2}},
		},
		{
			name:  "forget drops a key from the current generation",
			steps: []func(*cache){put("a", 1), put("b", 2), put("c", 3), forget("c")},
			want:  state{old: map[string]int{"a": 1, "b": 2}},
		},
		{
			name:  "forget drops a key from the old generation",
			steps: []func(*cache){put("a", 1), put("b", 2), put("c", 3), forget("a"), forget("absent")},
			want:  state{cur: map[string]int{"c": 3}, old: map[string]int{"b": 2}},
		},
		{
			name:  "forget all empties both generations",
			steps: []func(*cache){put("a", 1), put("b", 2), put("c", 3), forgetAll, put("d", 4)},
			want:  state{cur: map[string]int{"d": 4}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := gencache.New[string, int](2)
			for _, step := range tt.steps {
				step(c)
			}
			got := state{cur: map[string]int{}, old: map[string]int{}}
			for _, k := range []string{"a", "b", "c", "d", "e", "missing", "absent"} {
				switch v, where := gencache.Where(c, k); where {
				case "current":
					got.cur[k] = v
				case "old":
					got.old[k] = v
				}
			}
			want := state{cur: map[string]int{}, old: map[string]int{}}
			for k, v := range tt.want.cur {
				want.cur[k] = v
			}
			for k, v := range tt.want.old {
				want.old[k] = v
			}
			require.Equal(t, want, got)
			require.Equal(t, len(want.cur)+len(want.old), c.Len())
			for k, v := range want.cur {
				got, ok := c.Get(k)
				require.True(t, ok, k)
				require.Equal(t, v, got, k)
			}
		})
	}
}

func TestAFillIsRefusedWhenAnythingWasForgottenSinceItsEpoch(t *testing.T) {
	tests := []struct {
		name   string
		during func(*cache) // between Epoch and Fill, while the reader reads its source
		stored bool
	}{
		{name: "nothing happened", during: func(*cache) {}, stored: true},
		{name: "another key was cached", during: put("other", 1), stored: true},
		{name: "the key was read", during: get("k"), stored: true},
		{name: "the key was forgotten", during: forget("k"), stored: false},
		{name: "another key was forgotten", during: forget("other"), stored: false},
		{name: "an absent key was forgotten", during: forget("absent"), stored: false},
		{name: "everything was forgotten", during: forgetAll, stored: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := gencache.New[string, int](4)
			e := c.Epoch()
			tt.during(c)
			require.Equal(t, tt.stored, c.Fill(e, "k", 7))
			v, ok := c.Get("k")
			require.Equal(t, tt.stored, ok)
			if ok {
				require.Equal(t, 7, v)
			}
			require.True(t, c.Fill(c.Epoch(), "k", 8), "a fill from a fresh epoch is stored")
			v, _ = c.Get("k")
			require.Equal(t, 8, v)
		})
	}
}

// Whatever mix of calls it sees, the cache never holds more than two
// generations of its size, and never fewer than the last entry put.
func TestTheCacheNeverHoldsMoreThanTwoGenerations(t *testing.T) {
	for _, size := range []int{1, 3, 64} {
		t.Run(fmt.Sprintf("size %d", size), func(t *testing.T) {
			c := gencache.New[int, int](size)
			rng := rand.New(rand.NewPCG(1, uint64(size)))
			for i := range 20 * size {
				k := rng.IntN(8 * size)
				switch rng.IntN(10) {
				case 0:
					c.Forget(k)
				case 1, 2, 3:
					c.Get(k)
				case 4:
					c.Fill(c.Epoch(), k, i)
				default:
					c.Put(k, i)
					v, ok := c.Get(k)
					require.True(t, ok)
					require.Equal(t, i, v)
				}
				require.LessOrEqual(t, c.Len(), 2*size)
			}
		})
	}
	c := gencache.New[int, int](0)
	c.Put(1, 1)
	c.Put(2, 2)
	c.Put(3, 3)
	require.Equal(t, 2, c.Len(), "a size below one counts as one")
}

// Readers fill the cache from a source while a writer changes the source
// and forgets the key, as a store's commit hook does. Once Forget has
// returned, no read may see the value from before the change: neither a
// fill whose read began earlier nor a promotion from the old generation
// of an entry read earlier may put it back. Small generations and a
// stream of other keys keep entries moving between generations. Run with
// -race.
func TestNoValueFromBeforeAForgetComesBack(t *testing.T) {
	const rounds = 2000
	c := gencache.New[string, int](4)
	var source atomic.Int64 // the record's version in the source of truth
	var stop atomic.Bool
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if _, ok := c.Get("k"); !ok {
					e := c.Epoch()
					c.Fill(e, "k", int(source.Load()))
				}
				c.Put(fmt.Sprintf("other-%d-%d", r, i%16), i) // churn the generations
			}
		})
	}
	for v := 1; v <= rounds; v++ {
		source.Store(int64(v))
		c.Forget("k")
		for range 20 {
			got, ok := c.Get("k")
			if ok && got != v {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("round %d: read %d after the change to %d was forgotten", v, got, v)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
}

// Every method is safe under concurrent use (run with -race), and the
// bound holds while goroutines race.
func TestConcurrentUseStaysWithinTheBound(t *testing.T) {
	const size = 16
	c := gencache.New[int, int](size)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for i := range 5000 {
				k := rng.IntN(4 * size)
				switch rng.IntN(8) {
				case 0:
					c.Forget(k)
				case 1:
					if i%500 == 0 {
						c.ForgetAll()
					}
				case 2:
					c.Fill(c.Epoch(), k, i)
				case 3, 4:
					c.Put(k, i)
				default:
					c.Get(k)
				}
				if n := c.Len(); n > 2*size {
					t.Errorf("%d entries in a cache of two generations of %d", n, size)
					return
				}
			}
		})
	}
	wg.Wait()
}
