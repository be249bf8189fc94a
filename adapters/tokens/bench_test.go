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

func BenchmarkVerify(b *testing.B) {
	e := newEnv(b)
	token, err := e.issuer.Issue(b.Context(), sampleToken(e.clock.Now()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.issuer.Verify(b.Context(), token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
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
