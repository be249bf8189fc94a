//go:build unix

package boltstore

import (
	"io/fs"
	"os"
	"syscall"
)

// matchOwner gives the file at path the owner and group of the file that
// info describes, so that a compaction run as root does not leave the
// service's user a store it cannot open. Without the right to change the
// owner (a compaction run as the service's user), the owner is already
// the same.
func matchOwner(path string, info fs.FileInfo) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Uid == uint32(os.Getuid()) && st.Gid == uint32(os.Getgid()) {
		return nil
	}
	return os.Chown(path, int(st.Uid), int(st.Gid))
}
