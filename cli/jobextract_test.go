package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hdr is one entry of a test tarball.
type hdr struct {
	name, body, link string
	typ              byte
	mode             int64
}

func makeTarGz(t testing.TB, entries []hdr) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link, Mode: mode, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractTarGz(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "job1")
	data := makeTarGz(t, []hdr{
		{name: "outputs/", typ: tar.TypeDir, mode: 0o755},
		{name: "outputs/model/w.bin", body: "weights"},
		{name: "./outputs/run.sh", body: "#!/bin/sh", mode: 0o4755},
		{name: "outputs/latest", typ: tar.TypeSymlink, link: "model/w.bin"},
	})
	st, err := extractTarGz(bytes.NewReader(data), dest)
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "outputs/model/w.bin")); err != nil || string(b) != "weights" {
		t.Errorf("w.bin: got %q, %v; want weights", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "outputs/run.sh")); err != nil || fi.Mode() != 0o755 {
		t.Errorf("run.sh: got mode %v, %v; want -rwxr-xr-x (no set-id bit)", fi.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(dest, "outputs/latest")); err != nil || l != "model/w.bin" {
		t.Errorf("latest: got link %q, %v; want model/w.bin", l, err)
	}
	if st.Files != 2 || st.Links != 1 || st.Bytes != int64(len("weights")+len("#!/bin/sh")) {
		t.Errorf("stats: got %+v; want 2 files, 1 link", st)
	}
	if _, err := extractTarGz(bytes.NewReader(data), dest); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("extract into an existing folder: got %v; want already exists", err)
	}
	if _, err := extractTarGz(strings.NewReader("not gzip"), filepath.Join(base, "j2")); err == nil {
		t.Errorf("extract of a non-gzip download: got no error")
	}
}

// TestExtractHostile feeds archives that try to write outside the folder
// and checks that nothing is written outside it.
func TestExtractHostile(t *testing.T) {
	cases := []struct {
		name    string
		entries func(outside string) []hdr
		errHas  string // "" when the archive extracts (with entries left out)
		skipped int
	}{
		{"dotdot", func(string) []hdr { return []hdr{{name: "../evil", body: "x"}} }, "leaving its folder", 0},
		{"dotdot deep", func(string) []hdr { return []hdr{{name: "outputs/../../evil", body: "x"}} }, "leaving its folder", 0},
		{"absolute", func(o string) []hdr { return []hdr{{name: filepath.Join(o, "evil"), body: "x"}} }, "absolute path", 0},
		{"absolute link then write", func(o string) []hdr {
			return []hdr{{name: "outputs/l", typ: tar.TypeSymlink, link: o}, {name: "outputs/l/evil", body: "x"}}
		}, "", 1},
		{"relative link out then write", func(string) []hdr {
			return []hdr{{name: "outputs/l", typ: tar.TypeSymlink, link: "../../outside"}, {name: "outputs/l/evil", body: "x"}}
		}, "", 1},
		{"link inside then write below it", func(string) []hdr {
			return []hdr{{name: "outputs/", typ: tar.TypeDir}, {name: "outputs/l", typ: tar.TypeSymlink, link: "."}, {name: "outputs/l/evil", body: "x"}}
		}, "a link", 0},
		{"link then overwrite it", func(string) []hdr {
			return []hdr{{name: "l", typ: tar.TypeSymlink, link: "x"}, {name: "l", body: "x"}}
		}, "twice", 0},
		{"link chain out", func(string) []hdr {
			return []hdr{{name: "a", typ: tar.TypeSymlink, link: "."}, {name: "b", typ: tar.TypeSymlink, link: "a/.."}, {name: "b/evil", body: "x"}}
		}, "a link", 0},
		{"file then dir below it", func(string) []hdr { return []hdr{{name: "f", body: "x"}, {name: "f/g", body: "y"}} }, "a file", 0},
		{"duplicate file", func(string) []hdr { return []hdr{{name: "f", body: "x"}, {name: "f", body: "y"}} }, "twice", 0},
		{"hard link out", func(o string) []hdr {
			return []hdr{{name: "h", typ: tar.TypeLink, link: filepath.Join(o, "target")}}
		}, "", 1},
		{"device", func(string) []hdr { return []hdr{{name: "dev", typ: tar.TypeChar}} }, "", 1},
		{"backslash", func(string) []hdr { return []hdr{{name: `..\evil`, body: "x"}} }, "bad name", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "target"), []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(base, "dl", "job")
			if err := os.Mkdir(filepath.Dir(dest), 0o755); err != nil {
				t.Fatal(err)
			}
			st, err := extractTarGz(bytes.NewReader(makeTarGz(t, c.entries(outside))), dest)
			switch {
			case c.errHas == "" && err != nil:
				t.Errorf("got error %v; want the archive extracted with entries left out", err)
			case c.errHas != "" && (err == nil || !strings.Contains(err.Error(), c.errHas)):
				t.Errorf("got error %v; want one with %q", err, c.errHas)
			}
			if len(st.Skipped) != c.skipped {
				t.Errorf("skipped: got %q; want %d", st.Skipped, c.skipped)
			}
			assertOnlyInside(t, base, dest, outside)
		})
	}
}

// assertOnlyInside checks that base holds nothing but dest's tree and
// outside's untouched target.
func assertOnlyInside(t *testing.T, base, dest, outside string) {
	t.Helper()
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", p, err)
			return nil
		}
		switch {
		case p == base, p == filepath.Dir(dest), p == outside, p == dest, strings.HasPrefix(p, dest+"/"):
		case p == filepath.Join(outside, "target"):
			if b, _ := os.ReadFile(p); string(b) != "keep" {
				t.Errorf("%s: got %q; want it untouched", p, b)
			}
		default:
			t.Errorf("written outside the download folder: %s", p)
		}
		return nil
	})
}
