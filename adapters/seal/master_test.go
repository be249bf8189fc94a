package seal_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/seal"
)

// The sealer and the cookie key built from a master key are the ones its
// labels derive: values sealed and cookies signed before stay readable.
func TestTheMasterKeyGivesTheSealerAndCookieKeyOfTheirLabels(t *testing.T) {
	master := newKey(t)
	sealer, err := seal.NewFromMaster(master)
	require.NoError(t, err)
	key, err := seal.DeriveKey(master, seal.LabelSeal)
	require.NoError(t, err)
	byLabel, err := seal.New(key)
	require.NoError(t, err)
	sealed, err := byLabel.Seal([]byte("upstream tokens"), []byte("grant-1"))
	require.NoError(t, err)
	opened, err := sealer.Open(sealed, []byte("grant-1"))
	require.NoError(t, err)
	require.Equal(t, "upstream tokens", string(opened))

	cookie, err := seal.NewCookieKey(master)
	require.NoError(t, err)
	want, err := seal.DeriveKey(master, seal.LabelCookie)
	require.NoError(t, err)
	require.Equal(t, want, []byte(cookie))
	require.NotEqual(t, key, []byte(cookie))
}

func TestAShortMasterKeyBuildsNeither(t *testing.T) {
	_, err := seal.NewFromMaster(make(seal.MasterKey, seal.KeySize-1))
	require.Error(t, err)
	_, err = seal.NewCookieKey(make(seal.MasterKey, seal.KeySize-1))
	require.Error(t, err)
}
