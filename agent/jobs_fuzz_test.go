package agent

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzExtractCode extracts arbitrary bytes as a code snapshot into a
// working directory holding a planted link to a folder beside it: nothing
// is ever written outside the working directory.
func FuzzExtractCode(f *testing.F) {
	seed := func(entries ...tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range entries {
			body := h.Linkname
			if h.Typeflag == tar.TypeReg {
				h.Size, h.Linkname = int64(len(body)), ""
			}
			tw.WriteHeader(&h)
			if h.Typeflag == tar.TypeReg {
				tw.Write([]byte(body))
			}
		}
		tw.Close()
		return buf.Bytes()
	}
	f.Add(seed(tar.Header{Typeflag: tar.TypeDir, Name: "src/", Mode: 0o755}, tar.Header{Typeflag: tar.TypeReg, Name: "src/a.py", Linkname: "x", Mode: 0o644}))
	f.Add(seed(tar.Header{Typeflag: tar.TypeReg, Name: "evil/f", Linkname: "x", Mode: 0o644}))
	f.Add(seed(tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "../outside"}, tar.Header{Typeflag: tar.TypeReg, Name: "l/f", Linkname: "x"}))
	f.Add(seed(tar.Header{Typeflag: tar.TypeReg, Name: "../outside/f", Linkname: "x"}))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		wd, outside := filepath.Join(base, "wd"), filepath.Join(base, "outside")
		os.Mkdir(wd, 0o755)
		os.Mkdir(outside, 0o755)
		os.Symlink(outside, filepath.Join(wd, "evil"))
		extractCode(wd, bytes.NewReader(data), os.Getuid(), os.Getgid())
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("written outside the working directory: %v", ents)
		}
		if ents, _ := os.ReadDir(base); len(ents) != 2 {
			t.Fatalf("written beside the working directory: %v", ents)
		}
	})
}
