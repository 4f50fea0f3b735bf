//go:build !unix

package store

import "os"

// tryLock has no lock to take where flock does not exist: a second ccpbx
// on the same data directory is then not detected.
func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) {}
