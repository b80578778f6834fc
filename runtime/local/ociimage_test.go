package local_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/computehub/chub/runtime/local"
	"github.com/computehub/chub/runtime/runtimetest"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarOf(t *testing.T, entries []entry, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var gzw *gzip.Writer
	w := tar.NewWriter(&buf)
	if gz {
		gzw = gzip.NewWriter(&buf)
		w = tar.NewWriter(gzw)
	}
	for _, e := range entries {
		writeEntry(t, w, e)
	}
	w.Close()
	if gzw != nil {
		gzw.Close()
	}
	return buf.Bytes()
}

func writeEntry(t *testing.T, w *tar.Writer, e entry) {
	h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
	if h.Typeflag == 0 {
		h.Typeflag = tar.TypeReg
	}
	if h.Mode == 0 {
		h.Mode = 0o644
	}
	if h.Typeflag != tar.TypeReg {
		h.Size = 0
	}
	if err := w.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	if h.Size > 0 {
		w.Write([]byte(e.body))
	}
}

// writeLayout writes an OCI image layout of the given layer blobs.
func writeLayout(t *testing.T, dir string, layers ...[]byte) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	os.MkdirAll(blobs, 0o755)
	put := func(b []byte) string {
		d := fmt.Sprintf("%x", sha256.Sum256(b))
		os.WriteFile(filepath.Join(blobs, d), b, 0o644)
		return "sha256:" + d
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	}
	var ls []desc
	for _, l := range layers {
		ls = append(ls, desc{"application/vnd.oci.image.layer.v1.tar", put(l), len(l)})
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`)
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{"application/vnd.oci.image.config.v1+json", put(cfg), len(cfg)}, "layers": ls})
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []desc{{"application/vnd.oci.image.manifest.v1+json", put(m), len(m)}}})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

func hostFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("this host lacks %s: %v", p, err)
	}
	return string(b)
}

func TestImportImage(t *testing.T) {
	skipUnlessRoot(t)
	// A tiny image: the host's dash and libc, and files to shadow.
	libc := hostFile(t, "/lib/x86_64-linux-gnu/libc.so.6")
	base := tarOf(t, []entry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/sh", body: hostFile(t, "/bin/dash"), mode: 0o755},
		{name: "lib/x86_64-linux-gnu/libc.so.6", body: libc, mode: 0o755},
		{name: "lib64/libc.so.6", typ: tar.TypeLink, link: "lib/x86_64-linux-gnu/libc.so.6"},
		{name: "lib64/ld-linux-x86-64.so.2", body: hostFile(t, "/lib64/ld-linux-x86-64.so.2"), mode: 0o755},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n"},
		{name: "etc/group", body: "root:x:0:\n"},
		{name: "root/", typ: tar.TypeDir, mode: 0o700},
		{name: "hello", body: "one\n"},
		{name: "gone", body: "x\n"},
		{name: "keep/a", body: "a\n"},
		{name: "opq/old", body: "old\n"},
		{name: "evil", typ: tar.TypeSymlink, link: "/"},
	}, false)
	top := tarOf(t, []entry{
		{name: "hello", body: "two\n"},
		{name: ".wh.gone"},
		{name: "opq/.wh..wh..opq"},
		{name: "opq/new", body: "new\n"},
	}, true)
	dir := t.TempDir()
	writeLayout(t, filepath.Join(dir, "layout"), base, top)
	writeLayout(t, filepath.Join(dir, "base"), base)

	rt := newRuntime(t)
	root := imageRoot()
	if err := local.ImportImage(root, "tiny", filepath.Join(dir, "layout")); err != nil {
		t.Fatal(err)
	}
	// The same base layer, from a tarball of a layout: unpacked once.
	tarball := filepath.Join(dir, "base.tar")
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	filepath.Walk(filepath.Join(dir, "base"), func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(filepath.Join(dir, "base"), p)
		if fi.IsDir() || rel == "." {
			return nil
		}
		b, _ := os.ReadFile(p)
		tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
		return nil
	})
	tw.Close()
	os.WriteFile(tarball, tb.Bytes(), 0o644)
	if err := local.ImportImage(root, "tiny-base", tarball); err != nil {
		t.Fatal(err)
	}
	imgs, err := local.ListImages(root)
	if err != nil {
		t.Fatal(err)
	}
	layersOf := map[string][]string{}
	for _, i := range imgs {
		layersOf[i.Name] = i.Layers
	}
	if len(layersOf["tiny"]) != 2 || len(layersOf["tiny-base"]) != 1 || layersOf["tiny"][0] != layersOf["tiny-base"][0] {
		t.Fatalf("images: %+v; want tiny of 2 layers sharing its first with tiny-base", imgs)
	}
	if err := local.ImportImage(root, "host", filepath.Join(dir, "layout")); err == nil {
		t.Error("imported an image called host")
	}

	spec := runtimetest.Spec(t)
	spec.Image = "tiny"
	runtimetest.Started(t, rt, spec)
	script := `read x < /hello; echo $x; for f in /gone /opq/old /opq/new /keep/a; do test -e $f && echo $f; done; true`
	if got := runtimetest.Sh(t, rt, spec.ID, "root", script); got != "two\n/opq/new\n/keep/a\n" {
		t.Errorf("inside the image: %q; want %q", got, "two\n/opq/new\n/keep/a\n")
	}
	if got := runtimetest.Sh(t, rt, spec.ID, "", `echo $HOME; echo hi > ~/f; read y < ~/f; echo $y`); got != "/home/azureuser\nhi\n" {
		t.Errorf("as azureuser: %q", got)
	}
	if err := rt.Destroy(context.Background(), spec.ID); err != nil {
		t.Fatal(err)
	}

	// An entry under a symlink of the same layer would be written outside.
	evil := tarOf(t, []entry{{name: "up", typ: tar.TypeSymlink, link: "/tmp"}, {name: "up/pwned", body: "x"}}, false)
	writeLayout(t, filepath.Join(dir, "evil"), evil)
	if err := local.ImportImage(root, "evil", filepath.Join(dir, "evil")); err == nil {
		t.Error("imported a layer writing through a symlink")
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Error("the import wrote /tmp/pwned on the host")
	}
}
