// Package studio serves ComputeHub Studio, the web interface, from assets
// embedded in the binary: no CDN, works offline.
package studio

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed web
var web embed.FS

// Owns reports whether a path belongs to Studio rather than the API: the
// root, the client-side pages under /ui/ and the assets under /static/.
func Owns(p string) bool {
	return p == "/" || p == "/index.html" || strings.HasPrefix(p, "/ui/") || p == "/ui" || strings.HasPrefix(p, "/static/") || p == "/favicon.ico"
}

// Handler serves Studio: assets from /static/, and index.html for every
// page so that client-side routes survive a reload.
func Handler() http.Handler {
	root, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded tree is a constant
	}
	files := http.FileServer(http.FS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/static/") {
			if _, err := fs.Stat(root, strings.TrimPrefix(path.Clean(r.URL.Path), "/")); err != nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Cache-Control", "public, max-age=300")
			files.ServeHTTP(w, r)
			return
		}
		index, err := fs.ReadFile(root, "index.html")
		if err != nil {
			http.Error(w, "Studio is not built into this binary", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(index)
	})
}
