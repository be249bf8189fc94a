package seal_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/seal"
)

func TestDeriveKeyIsDeterministicPerLabel(t *testing.T) {
	master := newKey(t)

	a1, err := seal.DeriveKey(master, seal.LabelSeal)
	require.NoError(t, err)
	a2, err := seal.DeriveKey(master, seal.LabelSeal)
	require.NoError(t, err)
	b, err := seal.DeriveKey(master, seal.LabelCookie)
	require.NoError(t, err)

	require.Len(t, a1, seal.KeySize)
	require.Len(t, b, seal.KeySize)
	require.Equal(t, a1, a2)
	require.NotEqual(t, a1, b)
	require.NotEqual(t, master, a1)
	require.NotEqual(t, master, b)
}

func TestDeriveKeyDependsOnTheMasterKey(t *testing.T) {
	k1, err := seal.DeriveKey(newKey(t), seal.LabelSeal)
	require.NoError(t, err)
	k2, err := seal.DeriveKey(newKey(t), seal.LabelSeal)
	require.NoError(t, err)
	require.NotEqual(t, k1, k2)
}

func TestDeriveKeyMatchesHKDFSHA256WithoutSalt(t *testing.T) {
	// A known answer pins the construction: if it changed, every sealed
	// value and cookie in existing deployments would become unreadable.
	// Expected value computed independently with
	//   openssl kdf -keylen 32 -kdfopt digest:SHA256 \
	//     -kdfopt hexkey:000102…1f -kdfopt "info:oidcproxy seal v1" HKDF
	master := make([]byte, 32)
	for i := range master {
		master[i] = byte(i)
	}
	got, err := seal.DeriveKey(master, seal.LabelSeal)
	require.NoError(t, err)
	require.Equal(t, "ff81a127c9f389c3b1d01adb162614cbddd9ca0cbaa95cdd52decccaf277a42d", hex.EncodeToString(got))
}

func TestDeriveKeyRejectsShortMastersAndEmptyLabels(t *testing.T) {
	_, err := seal.DeriveKey(make([]byte, 16), seal.LabelSeal)
	require.Error(t, err)
	_, err = seal.DeriveKey(newKey(t), "")
	require.Error(t, err)
}

func TestParseKeyAcceptsEveryBase64Spelling(t *testing.T) {
	// 0xfb 0xff bytes make the standard and URL alphabets differ.
	key := bytes.Repeat([]byte{0xfb, 0xff, 0x01, 0x7e}, 8)
	tests := []struct {
		name string
		in   string
	}{
		{"standard padded", base64.StdEncoding.EncodeToString(key)},
		{"standard unpadded", base64.RawStdEncoding.EncodeToString(key)},
		{"url padded", base64.URLEncoding.EncodeToString(key)},
		{"url unpadded", base64.RawURLEncoding.EncodeToString(key)},
		{"with a trailing newline", base64.StdEncoding.EncodeToString(key) + "\n"},
		{"with surrounding spaces", "  " + base64.StdEncoding.EncodeToString(key) + " \t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := seal.ParseKey(tt.in)
			require.NoError(t, err)
			require.Equal(t, key, got)
		})
	}
}

func TestParseKeyRejectsBadKeysWithoutEchoingThem(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"only whitespace", " \n "},
		{"too short", base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))},
		{"too long", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k"), 48))},
		{"not base64", "this-is-not-base64-but-a-secret-passphrase!"},
		{"mixed alphabets", "+-" + base64.RawStdEncoding.EncodeToString(make([]byte, 30))},
		{"hex instead of base64", hex.EncodeToString(make([]byte, 32))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := seal.ParseKey(tt.in)
			require.Error(t, err)
			require.Nil(t, key)
			if len(tt.in) > 3 {
				require.NotContains(t, err.Error(), tt.in)
			}
		})
	}
}

func TestEncodeKeyRoundTripsThroughParseKey(t *testing.T) {
	key := newKey(t)
	got, err := seal.ParseKey(seal.EncodeKey(key))
	require.NoError(t, err)
	require.Equal(t, key, got)
}
