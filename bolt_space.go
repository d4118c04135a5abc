package usersessions

import (
	"os"

	bolt "go.etcd.io/bbolt"
)

// FileSpace reports the file as the process holding it sees it: its size
// in bytes, bbolt's page size, and the bytes inside it that hold no data
// (free and pending pages, and the unused tail past the last page).
//
// Only the process that holds the file can read its free pages (another
// one cannot open it), so package control serves these numbers to the
// operator commands. The method is found through an interface on
// Store.Backend(): the backend type itself is not exported.
func (b *boltBackend) FileSpace() (size int64, pageSize int, free int64, err error) {
	var used int64
	err = b.viewTx(func(tx *bolt.Tx) error {
		used = tx.Size()
		pageSize = tx.DB().Info().PageSize
		st := tx.DB().Stats()
		free = int64(st.FreePageN+st.PendingPageN) * int64(pageSize)
		return nil
	})
	if err != nil {
		return 0, 0, 0, err
	}
	fi, err := os.Stat(b.path)
	if err != nil {
		return 0, 0, 0, err
	}
	size = fi.Size()
	return size, pageSize, free + max(size-used, 0), nil
}
