package webui

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Page is one of ClickHouse's web pages inside libchdb.
type Page struct {
	Path  string // where it is served: /play, /dashboard
	Title string // its <title>, which finds it in the library
}

// ClickHousePages are the pages served.
var ClickHousePages = []Page{
	{Path: "/play", Title: "ClickHouse Query"},
	{Path: "/dashboard", Title: "ClickHouse Dashboard"},
}

// maxPage bounds a page (the console is about 650 KB in 26.7).
const maxPage = 4 << 20

// Pages reads ClickHouse's pages from the library file at libPath and
// returns them by path, with every Asset's CDN address replaced by its
// local one. The library holds each page as a NUL-terminated string that
// starts with <!DOCTYPE html>; a page that cannot be found whole is an
// error naming it.
func Pages(libPath string) (map[string][]byte, error) {
	f, err := os.Open(libPath)
	if err != nil {
		return nil, fmt.Errorf("opening the engine library: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening the engine library: %w", err)
	}
	lib, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the engine library: %w", err)
	}
	defer func() { _ = syscall.Munmap(lib) }()
	out := map[string][]byte{}
	var errs []error
	for _, p := range ClickHousePages {
		page, err := findPage(lib, p.Title)
		if err != nil {
			errs = append(errs, fmt.Errorf("page %s (<title>%s</title>) in %s: %w", p.Path, p.Title, libPath, err))
			continue
		}
		out[p.Path] = rewriteCDN(page)
	}
	return out, errors.Join(errs...)
}

var doctype = []byte("<!doctype html>")

// findPage returns a copy of the NUL-terminated HTML document holding
// <title>title</title>.
func findPage(lib []byte, title string) ([]byte, error) {
	i := bytes.Index(lib, []byte("<title>"+title+"</title>"))
	if i < 0 {
		return nil, errors.New("not found")
	}
	start := bytes.LastIndexByte(lib[:i], 0) + 1
	end := bytes.IndexByte(lib[i:], 0)
	if end < 0 || i-start > maxPage || end > maxPage {
		return nil, errors.New("no NUL-terminated string around it")
	}
	page := lib[start : i+end]
	trimmed := bytes.TrimSpace(page)
	if !bytes.HasPrefix(bytes.ToLower(trimmed[:min(len(trimmed), len(doctype))]), doctype) || !bytes.HasSuffix(trimmed, []byte("</html>")) {
		return nil, errors.New("the string around it is not a whole HTML document")
	}
	return bytes.Clone(trimmed), nil
}

func rewriteCDN(page []byte) []byte {
	var pairs []string
	for _, a := range Assets {
		pairs = append(pairs, a.CDN, a.Served())
	}
	return []byte(strings.NewReplacer(pairs...).Replace(string(page)))
}
