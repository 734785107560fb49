//go:build !unix

package config

import "io/fs"

// fileGroup does not know file groups on this platform.
func fileGroup(fs.FileInfo) (int, bool) { return 0, false }
