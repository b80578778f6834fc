package e2e

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// wheel builds a pure-Python wheel of package name whose VALUE is value.
func wheel(t *testing.T, name, value string) []byte {
	t.Helper()
	info := name + "-1.0.dist-info/"
	files := []struct{ path, body string }{
		{name + "/__init__.py", "VALUE = " + value + "\n"},
		{info + "METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: 1.0\n"},
		{info + "WHEEL", "Wheel-Version: 1.0\nGenerator: chub-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, err := zw.Create(f.path)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f.body))
		sum := sha256.Sum256([]byte(f.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.path, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	record.WriteString(info + "RECORD,,\n")
	w, _ := zw.Create(info + "RECORD")
	w.Write([]byte(record.String()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rPackage builds the source tarball of a minimal R package (what R CMD
// build makes of DESCRIPTION, NAMESPACE and R/).
func rPackage(t *testing.T, name string) []byte {
	t.Helper()
	files := []struct{ path, body string }{
		{name + "/DESCRIPTION", "Package: " + name + "\nType: Package\nTitle: A Test Package\nVersion: 1.0\nAuthor: ComputeHub\nMaintainer: ComputeHub <e2e@example.invalid>\nDescription: Says hello.\nLicense: MIT\n"},
		{name + "/NAMESPACE", "export(" + name + "_hello)\n"},
		{name + "/R/hello.R", name + "_hello <- function() \"hello from " + name + "\"\n"},
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.path, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// packageIndex serves wheels as a PEP 503 simple index, and other files
// under /files/, on the host's 127.0.0.1.
func packageIndex(t *testing.T, wheels map[string][]byte, files map[string][]byte) (port string) {
	t.Helper()
	mux := http.NewServeMux()
	var root strings.Builder
	root.WriteString("<!DOCTYPE html><html><body>\n")
	for name, whl := range wheels {
		fn := name + "-1.0-py3-none-any.whl"
		sum := sha256.Sum256(whl)
		root.WriteString(fmt.Sprintf("<a href=\"/simple/%s/\">%s</a>\n", name, name))
		page := fmt.Sprintf("<!DOCTYPE html><html><body>\n<a href=\"/files/%s#sha256=%s\">%s</a>\n</body></html>\n", fn, hex.EncodeToString(sum[:]), fn)
		mux.HandleFunc("/simple/"+name+"/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, page) })
		files[fn] = whl
	}
	root.WriteString("</body></html>\n")
	mux.HandleFunc("/simple/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/simple/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, root.String())
	})
	for fn, b := range files {
		mux.HandleFunc("/files/"+fn, func(w http.ResponseWriter, r *http.Request) { w.Write(b) })
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
}

// TestPackagesAndKernelsPersist installs, inside a real instance, a wheel
// into the default environment (the user's site) and another into a new
// virtual environment (from a local index on the host's loopback), turns
// that environment into a Jupyter kernel, installs an R source package
// into the user library, and finds all of it after stop/start, restart and
// a server restart. The system environment stays protected.
func TestPackagesAndKernelsPersist(t *testing.T) {
	if _, err := os.Stat("/usr/bin/pasta"); err != nil {
		t.Skip("pasta is not installed (apt-get install passt)")
	}
	for _, p := range []string{"/usr/bin/python3", "/usr/lib/python3/dist-packages/pip", "/usr/lib/python3/dist-packages/ipykernel", "/usr/bin/jupyter", "/usr/bin/Rscript"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("the host image lacks %s (scripts/setup.sh installs it)", p)
		}
	}
	if _, err := os.Stat("/usr/share/python-wheels"); err != nil {
		t.Skip("the host image lacks python3-venv (scripts/setup.sh installs it)")
	}
	port := packageIndex(t,
		map[string][]byte{"chubdemo": wheel(t, "chubdemo", "42"), "chubvenv": wheel(t, "chubvenv", "7")},
		map[string][]byte{"chubr_1.0.tar.gz": rPackage(t, "chubr")})
	index := "http://" + hostLoopback + ":" + port
	pip := "--disable-pip-version-check --no-cache-dir --index-url " + index + "/simple/"

	began := time.Now()
	step := func(what string) {
		t.Logf("%-24s %v", what, time.Since(began).Round(100*time.Millisecond))
		began = time.Now()
	}
	s := startServer(t, "--instance-host-ports", port)
	c := s.client()
	createWith(t, c, "pkgs", chub.InstanceSettings{VMSize: "Standard_DS2_v2"})
	step("server and instance")

	// The default environment: pip as the user installs into ~/.local.
	out := mustRun(t, c, "pkgs", "pip install "+pip+" chubdemo 2>&1 && python3 -c 'import chubdemo; print(chubdemo.__file__, chubdemo.VALUE)'")
	if !strings.Contains(out, "/home/azureuser/.local/lib/python3") || !strings.HasSuffix(out, " 42\n") {
		t.Fatalf("pip install into the default environment:\n%s", out)
	}
	step("pip install (default)")
	// The system environment is protected, root included.
	if out, code := run(t, c, "pkgs", "sudo -n pip install "+pip+" chubvenv 2>&1"); code == 0 || !strings.Contains(out, "externally-managed-environment") {
		t.Errorf("pip install as root into the system environment: exit %d:\n%s", code, out)
	}
	// A new environment the seed's way, with its own package, as a kernel.
	mustRun(t, c, "pkgs", `set -e
python3 -m venv --system-site-packages ~/envs/newenv
~/envs/newenv/bin/pip install `+pip+` chubvenv >/dev/null
~/envs/newenv/bin/python -m ipykernel install --user --name newenv --display-name "Python (newenv)" 2>&1 | grep -v -i debug`)
	step("venv and kernel")
	if out, code := run(t, c, "pkgs", "python3 -c 'import chubvenv' 2>&1"); code == 0 {
		t.Errorf("the default environment sees the new environment's package: %s", out)
	}
	// R: a source package from the host, into the user library.
	mustRun(t, c, "pkgs", fmt.Sprintf(`set -e
python3 -c 'import urllib.request as u; open("/tmp/chubr_1.0.tar.gz", "wb").write(u.build_opener(u.ProxyHandler({})).open("%s/files/chubr_1.0.tar.gz", timeout=10).read())'
Rscript -e 'install.packages("/tmp/chubr_1.0.tar.gz", repos = NULL, type = "source")' 2>&1`, index))
	step("R package")

	check := func(when string) {
		t.Helper()
		// The four run side by side; each writes its own file.
		out := mustRun(t, c, "pkgs", `cd $(mktemp -d)
python3 -c 'import chubdemo; print("default", chubdemo.VALUE)' >1 2>&1 &
~/envs/newenv/bin/python -c 'import chubvenv; print("venv", chubvenv.VALUE)' >2 2>&1 &
jupyter kernelspec list >3 2>/dev/null &
Rscript -e 'library(chubr); cat(chubr_hello(), "in", find.package("chubr"), "\n")' >4 2>&1 &
wait
cat 1 2 3 4 ~/.local/share/jupyter/kernels/newenv/kernel.json`)
		for _, want := range []string{"default 42", "venv 7", "newenv", "/home/azureuser/.local/share/jupyter/kernels/newenv",
			`"Python (newenv)"`, "/home/azureuser/envs/newenv/bin/python", "hello from chubr in /home/azureuser/R/"} {
			if !strings.Contains(out, want) {
				t.Fatalf("%s: %q is missing from:\n%s", when, want, out)
			}
		}
		step(when)
	}
	act(t, c, "pkgs", chub.OpStop)
	act(t, c, "pkgs", chub.OpStart)
	check("after stop/start")
	act(t, c, "pkgs", chub.OpRestart)
	check("after restart")
	s.restart()
	c = s.client()
	check("after a server restart")
}
