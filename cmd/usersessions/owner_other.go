//go:build !unix

package main

import "os"

// keepOwnerAndMode gives the file at path the mode of the file it
// replaces, described by was; ownership is left to the platform.
func keepOwnerAndMode(path string, was os.FileInfo) error {
	return os.Chmod(path, keptMode(was))
}
