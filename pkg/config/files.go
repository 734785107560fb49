package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ReadableFile returns an error that names path when it cannot be opened or
// is a directory; Validate methods use it for *_file settings. The error
// never includes the file's content.
func ReadableFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			err = pe.Err
		}
		return fmt.Errorf("opening %q: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading %q: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%q is a directory", path)
	}
	return nil
}
