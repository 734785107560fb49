//go:build unix

package config

import (
	"io/fs"
	"syscall"
)

// fileGroup returns the group owning the file st describes.
func fileGroup(st fs.FileInfo) (int, bool) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(sys.Gid), true
	}
	return 0, false
}
