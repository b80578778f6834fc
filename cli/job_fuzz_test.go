package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzJobYAML(f *testing.F) {
	f.Add([]byte(baseYAML), "inputs.lr=0.1")
	f.Add([]byte("type: command\ncommand: python t.py ${{inputs.a}}\ncompute: azureml:ci\ninputs: {a: {type: literal, value: 1}}\noutputs: {m: {}}\nlimits: {timeout: 60}\nenvironment: {image: host}\n"), "")
	f.Add([]byte("command: x\ncompute: c\nresources: {instance_count: 1}\n"), "tags.a=")
	f.Add([]byte("- [a, {b: c}]\n"), "a.b.c={x: [1]}")
	f.Add([]byte("command: &a x\ncompute: *a\n"), "limits.timeout=1e3")
	f.Fuzz(func(t *testing.T, data []byte, set string) {
		var sets []string
		if set != "" {
			sets = []string{set}
		}
		d, err := parseJobYAML(data, "/base", sets)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("an empty error message")
			}
			return
		}
		if strings.TrimSpace(d.Command) == "" || d.Compute == "" {
			t.Errorf("parsed without a command or compute: %+v", d)
		}
		if d.CodePath != "" && !filepath.IsAbs(d.CodePath) {
			t.Errorf("code path %q is not absolute", d.CodePath)
		}
		for n := range d.Inputs {
			if !bindingName.MatchString(n) {
				t.Errorf("input name %q accepted", n)
			}
		}
		for n, o := range d.Outputs {
			if !bindingName.MatchString(n) || o.JobOutputType != "uri_folder" {
				t.Errorf("output %q %+v accepted", n, o)
			}
		}
		if d.Timeout < 0 {
			t.Errorf("negative timeout %v", d.Timeout)
		}
	})
}

// FuzzExtract extracts arbitrary tar streams (gzip'd here) and checks that
// nothing lands outside the download folder.
func FuzzExtract(f *testing.F) {
	seed := func(entries []hdr) []byte {
		gz := makeTarGz(f, entries)
		r, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			f.Fatal(err)
		}
		var raw bytes.Buffer
		if _, err := raw.ReadFrom(r); err != nil {
			f.Fatal(err)
		}
		return raw.Bytes()
	}
	f.Add(seed([]hdr{{name: "outputs/a", body: "x"}, {name: "outputs/l", typ: tar.TypeSymlink, link: "a"}}))
	f.Add(seed([]hdr{{name: "l", typ: tar.TypeSymlink, link: "../outside"}, {name: "l/evil", body: "x"}}))
	f.Add(seed([]hdr{{name: "a", typ: tar.TypeSymlink, link: "."}, {name: "b", typ: tar.TypeSymlink, link: "a/.."}, {name: "b/evil", body: "x"}}))
	f.Add(seed([]hdr{{name: "../evil", body: "x"}}))
	f.Add(seed([]hdr{{name: "d/", typ: tar.TypeDir}, {name: "d/h", typ: tar.TypeLink, link: "../outside/target"}}))
	f.Fuzz(func(t *testing.T, raw []byte) {
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
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		w.Write(raw)
		w.Close()
		extractTarGz(&gz, dest)
		assertOnlyInside(t, base, dest, outside)
	})
}
