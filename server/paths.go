package server

import (
	"net/http"
	"strings"
)

// armPaths serves the paths Azure's clients send as Azure Resource
// Manager does: runs of slashes count as one (the official
// @azure/arm-authorization client sends "//subscriptions/..." for a scope
// that starts with a slash). http.ServeMux would answer such a path with a
// redirect, which clients follow without their Authorization header.
// Paths with "." or ".." segments are left to the mux (and refused by the
// API's scope checks).
func armPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "//") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = collapseSlashes(r.URL.Path)
			if r.URL.RawPath != "" {
				r2.URL.RawPath = collapseSlashes(r.URL.RawPath)
			}
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// collapseSlashes replaces every run of '/' with one.
func collapseSlashes(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
