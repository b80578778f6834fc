package local

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fuzzTar renders a compact description of tar entries, one per line:
// a type flag byte ('0' file, '5' directory, '2' symlink, '1' hard link,
// '3' character device, '6' fifo, ...), the name, and after a tab the link
// target or the file's content.
func fuzzTar(spec string) []byte {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, line := range strings.Split(spec, "\n") {
		if len(line) < 2 {
			continue
		}
		name, extra, _ := strings.Cut(line[1:], "\t")
		h := &tar.Header{Typeflag: line[0], Name: name, Mode: 0o755, Format: tar.FormatPAX}
		switch h.Typeflag {
		case tar.TypeReg:
			h.Size = int64(len(extra))
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = extra
		}
		if w.WriteHeader(h) != nil {
			continue
		}
		if h.Typeflag == tar.TypeReg {
			w.Write([]byte(extra))
		}
	}
	w.Close()
	return buf.Bytes()
}

// snapshot lists every path under dir (but not under the skipped ones) with
// its type and, for files, its content.
func snapshot(t *testing.T, dir string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		for _, s := range skip {
			if p == s {
				return filepath.SkipDir
			}
		}
		v := d.Type().String()
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			v += " " + string(b)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			v += " -> " + l
		}
		out[p] = v
		return nil
	})
	return out
}

func diffSnapshots(before, after map[string]string) string {
	var d []string
	for p, v := range before {
		if after[p] != v {
			d = append(d, fmt.Sprintf("%s: %q became %q", p, v, after[p]))
		}
	}
	for p, v := range after {
		if _, ok := before[p]; !ok {
			d = append(d, fmt.Sprintf("%s: new %q", p, v))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

// FuzzImportImage imports an OCI image layout whose one layer and layer
// digest come from the fuzzer, beside a server's data (a database, another
// image's layer). Whatever the image holds, the import writes nothing
// outside the runtime root, leaves the other layers alone, and an image it
// accepts has its layers strictly inside <root>/layers: an instance made
// from it sees only its own layers.
func FuzzImportImage(f *testing.F) {
	f.Add("5etc/\n0etc/hostname\tfuzz\n2lib\tusr/lib\n5usr/lib/\n0usr/lib/libc.so\tELF", "", false)
	f.Add("0../../escape\tx\n0/abs/file\ty", "", true)
	f.Add("2link\t/tmp\n0link/evil\tx", "", false)
	f.Add("2link\t..\n5link/\n0link/x\tx", "", false)
	f.Add("1hard\t../../data/chub.db\n0.wh.gone\t\n5dir/\n0dir/.wh..wh..opq\t", "", false)
	f.Add("0.wh...\t", "", false)
	f.Add("0a/.wh..\t", "", false)
	f.Add("0x\tx", "..:..", false)
	f.Add("0x\tx", "sha256:..", false)
	f.Add("0x\tx", "..:instances", false)
	f.Add("3dev/null\t\n6run/fifo\t", "", false)
	f.Fuzz(func(t *testing.T, spec, digest string, asTar bool) {
		sandbox := t.TempDir()
		data := filepath.Join(sandbox, "data")
		root := filepath.Join(data, "runtime", "local")
		base := layerDir(root, "sha256:"+strings.Repeat("a", 64))
		for p, body := range map[string]string{
			filepath.Join(data, "chub.db"):                  "the database",
			filepath.Join(sandbox, "elsewhere", "secret"):   "keep",
			filepath.Join(base, "etc", "hostname"):          "base layer",
			filepath.Join(root, "instances", "i1", "upper"): "another instance's disk",
			filepath.Join(root, "images", "base", "x.json"): "{}",
		} {
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(body), 0o644)
		}
		layer := fuzzTar(spec)
		layout := filepath.Join(sandbox, "layout")
		blobs := filepath.Join(layout, "blobs", "sha256")
		os.MkdirAll(blobs, 0o755)
		put := func(b []byte) string {
			d := fmt.Sprintf("%x", sha256.Sum256(b))
			os.WriteFile(filepath.Join(blobs, d), b, 0o644)
			return "sha256:" + d
		}
		layerDigest := put(layer)
		if digest != "" {
			layerDigest = digest
			// Put the blob where a naive join of the digest would look for
			// it, when that is inside the layout.
			alg, hex, _ := strings.Cut(digest, ":")
			p := filepath.Join(layout, "blobs", alg, hex)
			if rel, err := filepath.Rel(layout, p); err == nil && !strings.HasPrefix(rel, "..") && strings.HasPrefix(rel, "blobs"+string(filepath.Separator)) {
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, layer, 0o644)
			}
		}
		m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest}}})
		idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []map[string]any{{"digest": put(m)}}})
		os.WriteFile(filepath.Join(layout, "index.json"), idx, 0o644)
		os.WriteFile(filepath.Join(layout, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
		src := layout
		if asTar {
			src = filepath.Join(sandbox, "image.tar")
			var buf bytes.Buffer
			w := tar.NewWriter(&buf)
			w.AddFS(os.DirFS(layout))
			w.Close()
			os.WriteFile(src, buf.Bytes(), 0o644)
		}

		newLayers := filepath.Join(root, "layers")
		before := snapshot(t, sandbox, newLayers, filepath.Join(root, "images"))
		baseBefore := snapshot(t, base)
		err := ImportImage(root, "fz", src)
		after := snapshot(t, sandbox, newLayers, filepath.Join(root, "images"))
		if d := diffSnapshots(before, after); d != "" {
			t.Fatalf("importing %q (digest %q) changed files outside the new layers (err %v):\n%s", spec, digest, err, d)
		}
		if d := diffSnapshots(baseBefore, snapshot(t, base)); d != "" {
			t.Fatalf("importing %q (digest %q) changed another image's layer (err %v):\n%s", spec, digest, err, d)
		}
		if err != nil {
			return
		}
		img, err := readImage(root, "fz")
		if err != nil {
			t.Fatalf("import succeeded but the image does not read: %v", err)
		}
		for _, dir := range img.lowerdirs(root) {
			rel, err := filepath.Rel(newLayers, dir)
			if err != nil || strings.HasPrefix(rel, "..") || len(strings.Split(rel, string(filepath.Separator))) != 2 {
				t.Fatalf("image layer %s (digest %q) is not a layer directory under %s", dir, digest, newLayers)
			}
			if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
				t.Fatalf("image layer %s is not a directory: %v", dir, err)
			}
		}
	})
}

// FuzzReadLayout reads an image layout's index.json and manifest, as a
// downloaded image gives them: no panic, and the layers returned have
// digests that name a blob inside the layout.
func FuzzReadLayout(f *testing.F) {
	f.Add(`{"manifests":[{"digest":"sha256:m"}]}`, `{"layers":[{"digest":"sha256:abc"}]}`)
	f.Add(`{"manifests":[{"digest":"sha256:m","platform":{"os":"linux","architecture":"arm64"}},{"digest":"sha256:m"}]}`, `{"manifests":[{"digest":"sha256:m"}]}`)
	f.Add(`{"manifests":[]}`, `{}`)
	f.Add(`{"manifests":[{"digest":"../m"}]}`, `{"layers":[]}`)
	f.Add(`{"manifests":[{"digest":"sha256:m"}]}`, `{"layers":[{"digest":"..:.."}]}`)
	f.Fuzz(func(t *testing.T, index, manifest string) {
		layout := t.TempDir()
		os.MkdirAll(filepath.Join(layout, "blobs", "sha256"), 0o755)
		os.WriteFile(filepath.Join(layout, "oci-layout"), []byte(`{}`), 0o644)
		os.WriteFile(filepath.Join(layout, "index.json"), []byte(index), 0o644)
		os.WriteFile(filepath.Join(layout, "blobs", "sha256", "m"), []byte(manifest), 0o644)
		layers, err := readLayout(layout)
		if err != nil {
			return
		}
		for _, l := range layers {
			p, err := blobPath(layout, l.Digest)
			if err != nil {
				continue // refused when unpacked
			}
			if rel, err := filepath.Rel(filepath.Join(layout, "blobs"), p); err != nil || strings.HasPrefix(rel, "..") || len(strings.Split(rel, "/")) != 2 {
				t.Fatalf("layer digest %q names %s, not a blob of the layout", l.Digest, p)
			}
			if d := layerDir("/root", l.Digest); !strings.HasPrefix(d, "/root/layers/") || strings.Count(strings.TrimPrefix(d, "/root/layers/"), "/") != 1 {
				t.Fatalf("layer digest %q unpacks to %s, outside the layer store", l.Digest, d)
			}
		}
	})
}
