package artifacts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/computehub/chub"
)

// seeds are the starting corpus of both targets.
func seeds(f *testing.F) {
	f.Add(makeTar(f, true, dir("./"), file("./train.py", "print(1)"), dir("./pkg/"), file("./pkg/m.py", "x"), symlink("./m.py", "pkg/m.py")))
	f.Add(makeTar(f, false, dir("outputs/"), file("outputs/model/w.txt", "w42\n"), file("outputs/m.json", "{}")))
	f.Add(makeTar(f, true, file("../../etc/cron.d/evil", "* * * * * root sh")))
	f.Add(makeTar(f, false, file("outputs/../../escape", "x")))
	f.Add(makeTar(f, true, symlink("s", "."), symlink("x", "s/..")))
	f.Add(makeTar(f, false, symlink("outputs/l", "/etc/shadow"), file("outputs/l/through", "x")))
	f.Add(makeTar(f, true, entry{name: "dev/null", typ: tar.TypeChar}))
	f.Add(makeTar(f, false, entry{name: "outputs/sda", typ: tar.TypeBlock}, file("outputs/ok", "1")))
	f.Add([]byte("garbage, not a tarball"))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3})
	f.Add(cutTar(f))
}

// FuzzCheckTar: CheckTar never panics, and whatever it accepts holds only
// regular files, directories and symlinks with clean relative names,
// symlinks with relative targets.
func FuzzCheckTar(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkTar(bytes.NewReader(data), 1000, 16<<20)
		if err != nil {
			if k := chub.ErrorKind(err); k != chub.KindInvalid && k != chub.KindTooLarge {
				t.Fatalf("refused with kind %d: %v; want KindInvalid or KindTooLarge", k, err)
			}
			return
		}
		src, err := decompress(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("accepted, yet not decompressible: %v", err)
		}
		tr := tar.NewReader(src)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("accepted, yet not a readable tar: %v", err)
			}
			if h.Typeflag == tar.TypeXGlobalHeader {
				continue
			}
			if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir && h.Typeflag != tar.TypeSymlink && h.Typeflag != '\x00' {
				t.Fatalf("accepted entry %q of type %q", h.Name, h.Typeflag)
			}
			if bad(h.Name) {
				t.Fatalf("accepted entry name %q", h.Name)
			}
			if h.Typeflag == tar.TypeSymlink {
				if h.Linkname == "" || strings.HasPrefix(h.Linkname, "/") {
					t.Fatalf("accepted symlink %q -> %q", h.Name, h.Linkname)
				}
				if j := path.Join(path.Dir(h.Name), h.Linkname); j == ".." || strings.HasPrefix(j, "../") {
					t.Fatalf("accepted symlink %q -> %q, which leads out", h.Name, h.Linkname)
				}
			}
		}
	})
}

// bad reports a name that is absolute, goes up or has a NUL.
func bad(name string) bool {
	if strings.HasPrefix(name, "/") || strings.IndexByte(name, 0) >= 0 {
		return true
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

// FuzzPutOutputs: whatever an agent sends, what is kept is a well-formed
// tar of regular files and directories under outputs/, each once, its
// content within the bound and as large as reported, and CheckTar accepts
// it. It fuzzes copyOutputs, the whole of PutOutputs' reading of the
// stream, in memory (PutOutputs adds only gzip and a synced file, which
// would make each run a disk flush; TestPutOutputs covers them).
func FuzzPutOutputs(f *testing.F) {
	seeds(f)
	const max = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		n, _, readErr, err := copyOutputs(&memSpool{b: &out}, bytes.NewReader(data), max, 100)
		if err != nil || readErr != nil {
			t.Fatalf("copy outputs: %v, %v", err, readErr)
		}
		if n < 0 || n > max {
			t.Fatalf("kept %d bytes; want 0..%d", n, max)
		}
		raw := gzipOf(t, out.Bytes())
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("kept outputs are not gzip: %v", err)
		}
		tr := tar.NewReader(zr)
		seen := map[string]bool{}
		var total int64
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("kept outputs are not a valid tar: %v", err)
			}
			name := strings.TrimSuffix(h.Name, "/")
			switch {
			case h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir:
				t.Fatalf("kept entry %q of type %q", h.Name, h.Typeflag)
			case bad(h.Name) || path.Clean(name) != name || (name != "outputs" && !strings.HasPrefix(name, "outputs/")):
				t.Fatalf("kept entry named %q", h.Name)
			case seen[name]:
				t.Fatalf("kept entry %q twice", h.Name)
			}
			seen[name] = true
			c, err := io.Copy(io.Discard, tr)
			if err != nil || c != h.Size {
				t.Fatalf("entry %q: read %d of %d bytes: %v", h.Name, c, h.Size, err)
			}
			total += c
		}
		if total != n {
			t.Fatalf("kept %d bytes of content; PutOutputs said %d", total, n)
		}
		if err := CheckTar(bytes.NewReader(raw), 0); err != nil {
			t.Fatalf("kept outputs fail CheckTar: %v", err)
		}
	})
}
