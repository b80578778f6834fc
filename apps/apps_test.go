package apps

import (
	"strings"
	"testing"
)

func TestCatalog(t *testing.T) {
	want := map[string]string{"jupyter": "Jupyter", "jupyterlab": "JupyterLab", "rstudio": "RStudio", "vscode": "VS Code"}
	seenPorts := map[int]string{}
	for _, a := range Catalog() {
		if want[a.Name] != a.DisplayName {
			t.Errorf("%s: display name %q; want %q", a.Name, a.DisplayName, want[a.Name])
		}
		delete(want, a.Name)
		if a.Program == "" || len(a.Command) == 0 || a.Port == 0 {
			t.Errorf("%s: program %q, command %v, port %d: all are needed", a.Name, a.Program, a.Command, a.Port)
		}
		if other, ok := seenPorts[a.Port]; ok {
			t.Errorf("%s and %s share port %d", a.Name, other, a.Port)
		}
		seenPorts[a.Port] = a.Name
	}
	for name := range want {
		t.Errorf("the catalog lacks %s", name)
	}
}

func TestJupyterSpec(t *testing.T) {
	a, ok := Lookup("jupyter")
	if !ok {
		t.Fatal("no jupyter in the catalog")
	}
	s := a.Spec("https://ci1.apps.localhost:8443")
	line := strings.Join(s.Command, " ")
	for _, w := range []string{"jupyter notebook", "--port=18888", "--NotebookApp.base_url=/jupyter/", "--NotebookApp.token= ", "--NotebookApp.password= ", "--ip=127.0.0.1",
		"--NotebookApp.allow_origin=https://ci1.apps.localhost:8443 "} {
		if !strings.Contains(line, w) {
			t.Errorf("jupyter's command %q lacks %q", line, w)
		}
	}
	// Jupyter's own XSRF check stays on, and no origin but the instance's may call it.
	if strings.Contains(line, "disable_check_xsrf") || strings.Contains(line, "allow_origin=*") || !s.TornadoXSRF {
		t.Errorf("jupyter's command %q (TornadoXSRF %v): want its XSRF and origin checks on", line, s.TornadoXSRF)
	}
	if s.ReadyPath != "/jupyter/api" || s.StripPrefix {
		t.Errorf("ready path %q, strip %v; want the base path's api, no strip", s.ReadyPath, s.StripPrefix)
	}
	if v, _ := Lookup("vscode"); v.Spec("x").ReadyPath != "/healthz" {
		t.Errorf("vscode ready path %q; want /healthz (it serves at / behind a stripped prefix)", v.Spec("x").ReadyPath)
	}
	if got := (Spec{Command: []string{"x", "--user={user}", "{home}/d"}}).Expand("azureuser", "/home/azureuser"); strings.Join(got, " ") != "x --user=azureuser /home/azureuser/d" {
		t.Errorf("expand: %v", got)
	}
}

func TestAvailable(t *testing.T) {
	got := Available(func(p string) bool { return p == "jupyter-notebook" || p == "code-server" })
	if strings.Join(got, ",") != "jupyter,vscode" {
		t.Fatalf("available: %v; want jupyter,vscode", got)
	}
	if got := Available(func(string) bool { return false }); len(got) != 0 {
		t.Fatalf("nothing installed: %v", got)
	}
}

func TestCustomFromAzure(t *testing.T) {
	tests := []struct {
		name, json string
		argv       string // the spec's command, joined with |
		port       int
		err        string
	}{
		{"command string", `{"name":"web","endpoints":[{"target":8000,"protocol":"http"}],"additionalProperties":{"command":"python3 -m http.server {port}"}}`,
			"/bin/sh|-c|python3 -m http.server 8000", 8000, ""},
		{"command array", `{"name":"web","endpoints":[{"target":8000}],"additionalProperties":{"command":["python3","-m","http.server","8000"]}}`,
			"python3|-m|http.server|8000", 8000, ""},
		{"image reference as command line", `{"name":"w2","image":{"type":"docker","reference":"busybox httpd -f -p {port}"},"endpoints":[{"target":9000}]}`,
			"/bin/sh|-c|busybox httpd -f -p 9000", 9000, ""},
		{"no port", `{"name":"web","additionalProperties":{"command":"true"}}`, "", 0, "needs a port"},
		{"no command", `{"name":"web","endpoints":[{"target":80}]}`, "", 0, "needs a command"},
		{"bad command type", `{"name":"web","endpoints":[{"target":80}],"additionalProperties":{"command":5}}`, "", 0, "string or an array"},
		{"catalog name", `{"name":"jupyter","endpoints":[{"target":80}],"additionalProperties":{"command":"x"}}`, "", 0, "built-in"},
		{"terminal", `{"name":"terminal","endpoints":[{"target":80}],"additionalProperties":{"command":"x"}}`, "", 0, "built-in"},
		{"slash in name", `{"name":"a/b","endpoints":[{"target":80}],"additionalProperties":{"command":"x"}}`, "", 0, "URL path segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CustomFromAzure([]byte(tt.json))
			var s Spec
			if err == nil {
				s, err = CustomSpec(c)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v; want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(s.Command, "|"); got != tt.argv || s.Port != tt.port || !s.StripPrefix {
				t.Fatalf("got %q port %d strip %v; want %q port %d strip", got, s.Port, s.StripPrefix, tt.argv, tt.port)
			}
		})
	}
	c, _ := CustomFromAzure([]byte(`{"name":"e","endpoints":[{"target":1}],"environmentVariables":{"B":{"type":"local","value":"2"},"A":{"value":"1"}},"additionalProperties":{"command":"x"}}`))
	s, err := CustomSpec(c)
	if err != nil || strings.Join(s.Env, " ") != "A=1 B=2 PORT=1 BASE_URL=/e/" {
		t.Fatalf("env %v, %v", s.Env, err)
	}
}
