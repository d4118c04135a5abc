//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
)

// keepOwnerAndMode gives the file at path (a new copy about to be renamed
// over a file) the owner, group and mode of the file it replaces, described
// by was. A copy written by root would otherwise belong to root, and an app
// running as its own user could no longer open its database. Only root may
// give a file to another user: for anyone else that is an error, and the
// caller leaves the original as it was.
func keepOwnerAndMode(path string, was os.FileInfo) error {
	if st, ok := was.Sys().(*syscall.Stat_t); ok {
		now, err := os.Stat(path)
		if err != nil {
			return err
		}
		uid, gid := int(st.Uid), int(st.Gid)
		if cur, ok := now.Sys().(*syscall.Stat_t); !ok || int(cur.Uid) != uid || int(cur.Gid) != gid {
			if err := os.Chown(path, uid, gid); err != nil {
				return fmt.Errorf("cannot give the copy the owner %d:%d of the file it replaces "+
					"(run this as that user or as root): %w", uid, gid, err)
			}
		}
	}
	// After the chown, which clears the set-ID bits.
	return os.Chmod(path, keptMode(was))
}
