package seal_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/oidcproxy/oidcproxy/adapters/seal"
)

func TestLoadOrCreateKeyFileCreatesAnOwnerOnlyKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oidcproxy.key")

	key, created, err := seal.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.True(t, created)
	require.Len(t, key, seal.KeySize)

	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	parsed, err := seal.ParseKey(string(data))
	require.NoError(t, err)
	require.Equal(t, key, parsed)

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
}

func TestLoadOrCreateKeyFileReloadsTheSameKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oidcproxy.key")
	first, created, err := seal.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.True(t, created)

	second, created, err := seal.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, first, second)
}

func TestLoadOrCreateKeyFileReadsAnOperatorWrittenKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oidcproxy.key")
	key := newKey(t)
	require.NoError(t, os.WriteFile(path, []byte(seal.EncodeKey(key)+"\n"), 0o600))

	got, created, err := seal.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, key, got)
}

func TestLoadOrCreateKeyFileRefusesFilesOthersCanAccess(t *testing.T) {
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o620, 0o601} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "oidcproxy.key")
			encoded := seal.EncodeKey(newKey(t))
			require.NoError(t, os.WriteFile(path, []byte(encoded), 0o600))
			require.NoError(t, os.Chmod(path, mode))

			key, created, err := seal.LoadOrCreateKeyFile(path)
			require.Error(t, err)
			require.Nil(t, key)
			require.False(t, created)
			require.Contains(t, err.Error(), "chmod 600")
			require.NotContains(t, err.Error(), encoded)

			data, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, encoded, string(data), "the file is left untouched")
		})
	}
}

func TestLoadOrCreateKeyFileRefusesAFileThatIsNotAKey(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"empty file", ""},
		{"short key", seal.EncodeKey([]byte("short"))},
		{"passphrase", "correct horse battery staple, a secret"},
		{"oversized file", strings.Repeat("A", 4096)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "oidcproxy.key")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			_, created, err := seal.LoadOrCreateKeyFile(path)
			require.Error(t, err)
			require.False(t, created)
			if tt.content != "" {
				require.NotContains(t, err.Error(), tt.content)
			}
		})
	}
}

func TestLoadOrCreateKeyFileRefusesADirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oidcproxy.key")
	require.NoError(t, os.Mkdir(path, 0o700))
	_, _, err := seal.LoadOrCreateKeyFile(path)
	require.Error(t, err)
}

func TestLoadOrCreateKeyFileFailsWhenTheDirectoryIsMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "oidcproxy.key")
	_, created, err := seal.LoadOrCreateKeyFile(path)
	require.Error(t, err)
	require.False(t, created)
}

func TestConcurrentLoadOrCreateKeyFileAgreesOnOneKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oidcproxy.key")
	const n = 16
	keys := make([][]byte, n)
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			keys[i], created[i], errs[i] = seal.LoadOrCreateKeyFile(path)
		})
	}
	wg.Wait()

	creators := 0
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, keys[0], keys[i])
		if created[i] {
			creators++
		}
	}
	require.Equal(t, 1, creators)
}
