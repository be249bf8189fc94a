package tokens_test

import (
	"testing"
)

func BenchmarkIssue(b *testing.B) {
	e := newEnv(b)
	at := sampleToken(e.clock.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.issuer.Issue(b.Context(), at); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached is the steady state of a resource server: the same
// token presented again and again (signature checked once, then cached).
func BenchmarkVerifyCached(b *testing.B) {
	e := newEnv(b)
	token, err := e.issuer.Issue(b.Context(), sampleToken(e.clock.Now()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.issuer.Verify(b.Context(), token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyUncached verifies a different token each time: the full
// ES256 verification cost that the cache saves.
func BenchmarkVerifyUncached(b *testing.B) {
	e := newEnv(b)
	const distinct = 4096
	tokens := make([]string, distinct)
	for i := range tokens {
		at := sampleToken(e.clock.Now())
		at.JTI = at.JTI + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		t, err := e.issuer.Issue(b.Context(), at)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = t
	}
	verifier := e.open(b) // an issuer with an empty cache on the same key ring
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%distinct == 0 && i > 0 {
			verifier = e.open(b) // a new issuer: empty cache again
		}
		if _, err := verifier.Verify(b.Context(), tokens[i%distinct]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
