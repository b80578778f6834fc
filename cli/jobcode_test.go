package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

var timeZero = time.Unix(1_000_000, 0)

// tarEntry is one entry as read back from a tarball.
type tarEntry struct {
	Type byte
	Link string
	Body string
	Mode int64
}

func readTarGz(t *testing.T, data []byte) map[string]tarEntry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	out := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		body, _ := io.ReadAll(tr)
		if _, dup := out[h.Name]; dup {
			t.Errorf("entry %s twice", h.Name)
		}
		out[h.Name] = tarEntry{Type: h.Typeflag, Link: h.Linkname, Body: string(body), Mode: h.Mode}
	}
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTarCode(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "src")
	writeFiles(t, base, map[string]string{"secret.txt": "outside"})
	writeFiles(t, root, map[string]string{
		"train.py":           "print(1)",
		"pkg/mod.py":         "x = 1",
		"pkg/data/big.bin":   "ignored",
		"pkg/cache.pyc":      "ignored",
		"keep.pyc":           "kept by !",
		".git/config":        "never",
		"sub/.git/HEAD":      "never",
		"logs/run.log":       "ignored dir",
		"top.tmp":            "anchored ignore",
		"deep/top.tmp":       "not anchored: kept",
		"deep/x/y/z.ckpt":    "** ignored",
		".amlignore":         "*.pyc\n!keep.pyc\n# comment\n\nlogs/\n/top.tmp\npkg/data\n**/*.ckpt\n",
		".gitignore":         "train.py\n", // .amlignore wins
		"exec.sh":            "#!/bin/sh",
		"name with space.py": "ok",
	})
	if err := os.Chmod(filepath.Join(root, "exec.sh"), 0o4755); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"link_in":        "pkg/mod.py",
		"pkg/link_up":    "../train.py",
		"link_dir":       "pkg",
		"link_abs":       "/etc/passwd",
		"link_out":       "../secret.txt",
		"pkg/link_out2":  "../../secret.txt",
		"link_dangling":  "nowhere",
		"link_to_outdir": "..",
	}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	digest, st, err := tarCode(root, &buf)
	if err != nil {
		t.Fatalf("tarCode: %v", err)
	}
	got := readTarGz(t, buf.Bytes())
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{".amlignore", ".gitignore", "deep/", "deep/top.tmp", "deep/x/", "deep/x/y/", "exec.sh", "keep.pyc",
		"link_dangling", "link_dir", "link_in", "name with space.py", "pkg/", "pkg/link_up", "pkg/mod.py", "sub/", "train.py"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("entries: got %q\nwant %q", names, want)
	}
	for p, target := range map[string]string{"link_in": "pkg/mod.py", "pkg/link_up": "../train.py", "link_dir": "pkg", "link_dangling": "nowhere"} {
		if e := got[p]; e.Type != tar.TypeSymlink || e.Link != target {
			t.Errorf("%s: got type %q link %q; want a symlink to %s", p, e.Type, e.Link, target)
		}
	}
	if e := got["train.py"]; e.Type != tar.TypeReg || e.Body != "print(1)" {
		t.Errorf("train.py: got %+v; want a file with print(1)", e)
	}
	if e := got["exec.sh"]; e.Mode != 0o755 {
		t.Errorf("exec.sh mode: got %o; want 755 (no set-id bit)", e.Mode)
	}
	for _, e := range got {
		if strings.Contains(e.Body, "outside") {
			t.Errorf("content from outside the code folder in the tarball")
		}
	}
	if len(st.Skipped) != 5 { // 4 links outside, the fifo
		t.Errorf("skipped: got %q; want the 4 outside links and the fifo", st.Skipped)
	}
	if st.Files != 8 || st.Links != 4 {
		t.Errorf("stats: got %d files %d links; want 8 and 4", st.Files, st.Links)
	}

	// The digest names the content: the same content gives the same
	// digest (times do not count), a changed byte another.
	var again bytes.Buffer
	if err := os.Chtimes(filepath.Join(root, "train.py"), timeZero, timeZero); err != nil {
		t.Fatal(err)
	}
	d2, _, err := tarCode(root, &again)
	if err != nil || d2 != digest {
		t.Errorf("digest after touching a file: got %s (%v); want %s", d2, err, digest)
	}
	writeFiles(t, root, map[string]string{"train.py": "print(2)"})
	d3, _, _ := tarCode(root, io.Discard)
	if d3 == digest {
		t.Errorf("digest after a content change: unchanged %s", d3)
	}
}

func TestTarCodeGitignoreAndFile(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a.py": "a", "b.log": "b", ".gitignore": "*.log\n"})
	var buf bytes.Buffer
	if _, _, err := tarCode(root, &buf); err != nil {
		t.Fatal(err)
	}
	got := readTarGz(t, buf.Bytes())
	if _, ok := got["b.log"]; ok {
		t.Errorf("b.log: got it in the tarball; want it left out by .gitignore")
	}
	if _, ok := got["a.py"]; !ok {
		t.Errorf("a.py: missing from the tarball")
	}
	buf.Reset()
	if _, _, err := tarCode(filepath.Join(root, "a.py"), &buf); err != nil {
		t.Fatal(err)
	}
	if got := readTarGz(t, buf.Bytes()); len(got) != 1 || got["a.py"].Body != "a" {
		t.Errorf("one-file code: got %+v; want just a.py", got)
	}
	if _, _, err := tarCode(filepath.Join(root, "missing"), io.Discard); err == nil {
		t.Errorf("missing code folder: got no error")
	}
}

func TestIgnoreRules(t *testing.T) {
	l := parseIgnore("*.pyc\n!keep.pyc\nbuild/\n/root.txt\ndocs/*.md\n**/tmp\na/**/b\n\\!bang\n")
	cases := []struct {
		path string
		dir  bool
		want bool
	}{
		{"x.pyc", false, true}, {"d/x.pyc", false, true}, {"keep.pyc", false, false},
		{"build", true, true}, {"build", false, false}, {"src/build", true, true},
		{"root.txt", false, true}, {"sub/root.txt", false, false},
		{"docs/a.md", false, true}, {"docs/sub/a.md", false, false}, {"x/docs/a.md", false, false},
		{"tmp", true, true}, {"x/y/tmp", false, true},
		{"a/b", false, true}, {"a/x/y/b", false, true}, {"b", false, false},
		{"!bang", false, true}, {"main.py", false, false},
	}
	for _, c := range cases {
		if got := l.ignored(c.path, c.dir); got != c.want {
			t.Errorf("ignored(%q, dir %v): got %v; want %v", c.path, c.dir, got, c.want)
		}
	}
}

func TestLinkInside(t *testing.T) {
	cases := []struct {
		rel, target string
		want        bool
	}{
		{"a", "b", true}, {"d/a", "../b", true}, {"d/a", "../../b", false}, {"a", "..", false},
		{"a", "/etc", false}, {"a", ".", true}, {"a", "", false}, {"d/e/a", "../../x/../y", true}, {"a", "x/../../y", false},
	}
	for _, c := range cases {
		if got := linkInside(c.rel, c.target); got != c.want {
			t.Errorf("linkInside(%q, %q): got %v; want %v", c.rel, c.target, got, c.want)
		}
	}
}
