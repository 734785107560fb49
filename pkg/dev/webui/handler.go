package webui

import (
	"net/http"
	"os"
	"strings"
	"sync"
)

// Handler serves the pages (GET /play, GET /dashboard) and the assets
// (GET /_assets/...). The pages are read from the library at the first
// request and kept in memory; the assets are served from the cache
// directory. It is safe for concurrent use.
type Handler struct {
	libPath  string
	cacheDir string

	once  sync.Once
	pages map[string][]byte
	err   error
}

// NewHandler serves the pages of the library at libPath and the assets
// cached in cacheDir (EnsureAssets).
func NewHandler(libPath, cacheDir string) *Handler {
	return &Handler{libPath: libPath, cacheDir: cacheDir}
}

// Handles reports whether path is served by the handler.
func Handles(path string) bool {
	if strings.HasPrefix(path, "/_assets/") {
		return true
	}
	for _, p := range ClickHousePages {
		if p.Path == path {
			return true
		}
	}
	return false
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_assets/") {
		h.serveAsset(w, r)
		return
	}
	h.once.Do(func() { h.pages, h.err = Pages(h.libPath) })
	page, ok := h.pages[r.URL.Path]
	if !ok {
		msg := "not found"
		if h.err != nil {
			msg = h.err.Error()
		}
		http.Error(w, msg, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(page)
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	for _, a := range Assets {
		if a.Served() != r.URL.Path {
			continue
		}
		b, err := os.ReadFile(AssetPath(h.cacheDir, a))
		if err != nil {
			http.Error(w, a.Package+"@"+a.Version+" is not in the cache: run `make deps` (bin/chserver -fetch)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=UTF-8")
		w.Header().Set("Cache-Control", "max-age=86400")
		_, _ = w.Write(b)
		return
	}
	http.NotFound(w, r)
}
