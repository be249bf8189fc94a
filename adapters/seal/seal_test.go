package seal_test

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/seal"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	key := make([]byte, seal.KeySize)
	_, err := rand.Read(key)
	require.NoError(t, err)
	return key
}

func newSealer(t testing.TB) *seal.Sealer {
	t.Helper()
	s, err := seal.New(newKey(t))
	require.NoError(t, err)
	return s
}

func TestNewRejectsKeysThatAreNot32Bytes(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		_, err := seal.New(make([]byte, n))
		require.Error(t, err, "key of %d bytes", n)
	}
}

func TestSealedValuesOpenWithTheSameKeyAndAssociatedData(t *testing.T) {
	s := newSealer(t)
	tests := []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"text with associated data", []byte("upstream refresh token"), []byte("grant-1")},
		{"empty plaintext", []byte{}, []byte("grant-2")},
		{"nil associated data", []byte("secret"), nil},
		{"large binary value", bytes.Repeat([]byte{0, 1, 2, 255}, 4096), []byte("kid")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.Seal(tt.plaintext, tt.ad)
			require.NoError(t, err)
			require.Len(t, sealed, len(tt.plaintext)+1+12+16)
			require.Equal(t, byte(1), sealed[0], "version byte")
			if len(tt.plaintext) >= 8 {
				require.NotContains(t, string(sealed), string(tt.plaintext))
			}

			opened, err := s.Open(sealed, tt.ad)
			require.NoError(t, err)
			require.Equal(t, len(tt.plaintext), len(opened))
			require.True(t, bytes.Equal(tt.plaintext, opened))
		})
	}
}

func TestOpenRejectsEveryTamperedByte(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal([]byte("an upstream access token"), []byte("grant"))
	require.NoError(t, err)

	for i := range sealed {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			tampered := bytes.Clone(sealed)
			tampered[i] ^= flip
			_, err := s.Open(tampered, []byte("grant"))
			require.Error(t, err, "byte %d xor %#x", i, flip)
		}
	}
}

func TestOpenRejectsTruncatedAndExtendedInput(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal([]byte("value"), nil)
	require.NoError(t, err)

	for n := range len(sealed) {
		_, err := s.Open(sealed[:n], nil)
		require.Error(t, err, "truncated to %d bytes", n)
	}
	_, err = s.Open(append(bytes.Clone(sealed), 0), nil)
	require.Error(t, err)
}

func TestOpenRejectsShortInputAsMalformed(t *testing.T) {
	s := newSealer(t)
	_, err := s.Open(make([]byte, 28), nil)
	require.ErrorIs(t, err, seal.ErrMalformed)
}

func TestOpenRejectsAnUnknownVersion(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal([]byte("value"), nil)
	require.NoError(t, err)
	sealed[0] = 2
	_, err = s.Open(sealed, nil)
	require.ErrorIs(t, err, seal.ErrUnsupportedVersion)
}

func TestOpenRejectsOtherAssociatedData(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal([]byte("token of grant A"), []byte("grant-A"))
	require.NoError(t, err)

	for _, ad := range [][]byte{[]byte("grant-B"), []byte("grant-A "), nil, {}} {
		_, err := s.Open(sealed, ad)
		require.ErrorIs(t, err, seal.ErrAuthentication, "associated data %q", ad)
	}
}

func TestOpenRejectsValuesSealedUnderAnotherKey(t *testing.T) {
	sealed, err := newSealer(t).Seal([]byte("value"), []byte("ad"))
	require.NoError(t, err)
	_, err = newSealer(t).Open(sealed, []byte("ad"))
	require.ErrorIs(t, err, seal.ErrAuthentication)
}

func TestOpenErrorsNeverContainThePlaintextOrKey(t *testing.T) {
	key := newKey(t)
	s, err := seal.New(key)
	require.NoError(t, err)
	plaintext := []byte("very-secret-upstream-token")
	sealed, err := s.Seal(plaintext, []byte("ad"))
	require.NoError(t, err)
	sealed[len(sealed)-1] ^= 1

	opened, err := s.Open(sealed, []byte("ad"))
	require.Error(t, err)
	require.Nil(t, opened)
	require.NotContains(t, err.Error(), string(plaintext))
	require.NotContains(t, err.Error(), seal.EncodeKey(key))
	require.NotContains(t, err.Error(), string(key))
}

func TestEverySealUsesAFreshNonce(t *testing.T) {
	s := newSealer(t)
	const n = 10000
	nonces := make(map[string]struct{}, n)
	for range n {
		sealed, err := s.Seal([]byte("same plaintext"), []byte("same ad"))
		require.NoError(t, err)
		nonces[string(sealed[1:13])] = struct{}{}
	}
	require.Len(t, nonces, n)
}

func TestSealerIsSafeForConcurrentUse(t *testing.T) {
	s := newSealer(t)
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			ad := []byte{byte(g)}
			for range 200 {
				sealed, err := s.Seal([]byte("value"), ad)
				if err == nil {
					_, err = s.Open(sealed, ad)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		require.NoError(t, <-done)
	}
}

func BenchmarkSeal(b *testing.B) {
	s := newSealer(b)
	plaintext := bytes.Repeat([]byte("x"), 1024)
	for b.Loop() {
		if _, err := s.Seal(plaintext, []byte("grant")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	s := newSealer(b)
	sealed, err := s.Seal(bytes.Repeat([]byte("x"), 1024), []byte("grant"))
	require.NoError(b, err)
	for b.Loop() {
		if _, err := s.Open(sealed, []byte("grant")); err != nil {
			b.Fatal(err)
		}
	}
}
