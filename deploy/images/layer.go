package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file or directory of a layer.
type entry struct {
	name     string // absolute path in the image
	mode     fs.FileMode
	uid, gid int
	data     []byte // nil for a directory
}

// baseLayer is the distroless/static-like base: the users, a world-writable
// /tmp and the nonroot user's home.
func baseLayer(created time.Time) (v1.Layer, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", User, User)
	group := fmt.Sprintf("root:x:0:\nnobody:x:65534:\nnonroot:x:%d:\n", User)
	return layer(created, []entry{
		{name: "/etc", mode: fs.ModeDir | 0o755},
		{name: "/etc/group", mode: 0o644, data: []byte(group)},
		{name: "/etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "/home", mode: fs.ModeDir | 0o755},
		{name: "/home/nonroot", mode: fs.ModeDir | 0o700, uid: User, gid: User},
		{name: "/tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777},
	})
}

// binaryLayer holds the binary at binPath (owned by root, not writable by
// the user the image runs as) and its parent directories.
func binaryLayer(binPath string, bin []byte, created time.Time) (v1.Layer, error) {
	var entries []entry
	for dir := path.Dir(binPath); dir != "/"; dir = path.Dir(dir) {
		entries = append([]entry{{name: dir, mode: fs.ModeDir | 0o755}}, entries...)
	}
	return layer(created, append(entries, entry{name: binPath, mode: 0o755, data: bin}))
}

// layer writes entries, in order, into an uncompressed tar whose every time
// is created, and wraps it as a gzip-compressed OCI layer.
func layer(created time.Time, entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name[1:], // relative, as image layers are
			Mode:    int64(e.mode.Perm()),
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: created.UTC(),
			Format:  tar.FormatPAX,
		}
		switch {
		case e.mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if e.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing layer entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("writing layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing layer: %w", err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("compressing layer: %w", err)
	}
	return l, nil
}
