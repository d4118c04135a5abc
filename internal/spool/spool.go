// Package spool passes copies of a session database through a private
// temporary file on their way to a slow destination: the copy is taken at
// local-disk speed, the database released, and the destination written
// from the spool file afterwards.
package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Copy runs fill with a spool file, then writes what fill wrote to w and
// returns the bytes written to w. fill reads the database (and releases
// it when done); only then does the slow part start. The spool file is
// named like pattern (as os.CreateTemp names files) in the first of dirs
// where it can be made, "" meaning os.TempDir; it has mode 0600 and is
// gone when Copy returns.
func Copy(w io.Writer, pattern string, dirs []string, fill func(io.Writer) (int64, error)) (int64, error) {
	f, err := create(pattern, dirs...)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, err := fill(f)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.Copy(w, f)
	if err == nil && n != size {
		err = fmt.Errorf("the copy has %d bytes, %d were read back", size, n)
	}
	return n, err
}

// file is a spool file, gone once closed.
type file struct {
	*os.File
	removed bool // unlinked while open (not possible on every system)
}

// create makes a spool file in the first of dirs where it can. The file is
// unlinked at once where the system allows it, so even a crash leaves no
// copy of the sessions behind; Close removes it otherwise.
func create(pattern string, dirs ...string) (*file, error) {
	err := errors.New("spool: no folder to create a file in")
	for _, dir := range dirs {
		var f *os.File
		if f, err = os.CreateTemp(dir, pattern); err == nil {
			return &file{File: f, removed: os.Remove(f.Name()) == nil}, nil
		}
	}
	return nil, err
}

// Close closes the file and removes it if it could not be unlinked
// earlier.
func (f *file) Close() error {
	err := f.File.Close()
	if !f.removed {
		os.Remove(f.Name())
	}
	return err
}
