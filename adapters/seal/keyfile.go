package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// maxKeyFileSize bounds what LoadOrCreateKeyFile reads: a key file holds one
// 44-character line, anything much larger is not a key file.
const maxKeyFileSize = 1024

// LoadOrCreateKeyFile returns the master key stored in the file at path, or,
// when the file does not exist, creates it with a fresh random key and
// reports created = true (the caller warns: a key file next to the store is
// weaker than a key kept in a secret manager).
//
// The file holds the key in standard base64 and must be accessible by its
// owner only: a file with any group or world permission is refused rather
// than silently trusted or fixed. Creation is exclusive and atomic: the key
// is written and fsynced under a temporary name and then hard-linked to
// path, which fails if path exists. So when two processes start at once
// exactly one key wins, both use it, and nobody can read a half-written file.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	key, err = readKeyFile(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err = createKeyFile(path)
	if errors.Is(err, fs.ErrExist) {
		// Another process created the file between our read and our link.
		key, err = readKeyFile(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: read key file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: read key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: read key file %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("seal: read key file %s: mode %04o gives access to group or others; it must be readable by its owner only (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("seal: read key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("seal: read key file %s: file is larger than %d bytes", path, maxKeyFileSize)
	}
	key, err := decodeKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("seal: read key file %s: %w", path, err)
	}
	return key, nil
}

func createKeyFile(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("seal: create key file: %w", err)
	}
	dir := filepath.Dir(path)
	// CreateTemp opens with O_EXCL and mode 0600.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("seal: create key file: %w", err)
	}
	// Once linked, the temporary name is only a second name for the file;
	// removing it is right on every path.
	defer os.Remove(tmp.Name())
	if err := writeAndSync(tmp, []byte(EncodeKey(key)+"\n")); err != nil {
		return nil, fmt.Errorf("seal: create key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		// fs.ErrExist stays visible to the caller through %w.
		return nil, fmt.Errorf("seal: create key file: %w", err)
	}
	// Make the new directory entry durable too, or a crash could lose the
	// key after data was already sealed with it.
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("seal: create key file: %w", err)
	}
	return key, nil
}

func writeAndSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
