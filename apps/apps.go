// Package apps is the catalog of the applications an instance offers in the
// browser (Jupyter, JupyterLab, RStudio, VS Code) and the rules that turn a
// catalog entry or a user's custom service into a Spec the agent runs.
package apps

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// App is one application of the catalog.
type App struct {
	// Name is the application's path segment on its instance's origin:
	// https://INSTANCE.<apps domain>/<Name>/.
	Name string
	// DisplayName is what the API's applications list shows.
	DisplayName string
	// Program is the executable whose presence on the instance's PATH makes
	// the application available.
	Program string
	// Command is the command line template; {port}, {base} (the URL path
	// prefix, with trailing slash) and {origin} (the instance's application
	// origin, https://INSTANCE.<apps domain>[:port]) are replaced.
	Command []string
	// Port is the loopback port the application listens on in the instance.
	Port int
	// ReadyPath is polled (relative to the base path) until it answers HTTP;
	// empty means a TCP connect suffices.
	ReadyPath string
	// StripPrefix says the application serves at / and the proxy removes
	// the base path; otherwise it is told the base path and sees it.
	StripPrefix bool
	// TornadoXSRF says the application checks Tornado's double-submit XSRF
	// token (the _xsrf cookie repeated in X-XSRFToken) on unsafe methods.
	TornadoXSRF bool
}

// Spec is one application as the agent starts it and the proxy reaches it.
type Spec struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Env     []string `json:"env,omitempty"`
	Port    int      `json:"port"`
	// ReadyPath is the absolute URL path polled until it answers HTTP
	// (any status below 500); empty means a TCP connect suffices.
	ReadyPath   string `json:"readyPath,omitempty"`
	StripPrefix bool   `json:"stripPrefix,omitempty"`
	// TornadoXSRF: see App.TornadoXSRF. The proxy, not the agent, uses it.
	TornadoXSRF bool `json:"-"`
}

// Terminal is the name of the browser terminal. It is served by the terminal
// gateway, not started by the agent, so it is not in Catalog.
const Terminal = "terminal"

var catalog = []App{
	{
		Name: "jupyter", DisplayName: "Jupyter", Program: "jupyter-notebook", Port: 18888, ReadyPath: "api",
		// The server authenticates every request (bearer token or session
		// cookie, owner only) and the app listens on the instance's loopback,
		// reachable only through the server: Jupyter's own token and password
		// are off. Its own checks stay on: the allowed origin is the
		// instance's application origin, and XSRF is checked on every POST
		// (browsers repeat the _xsrf cookie; for requests authenticated by an
		// Authorization header, which no other site can forge, the proxy
		// supplies the pair: see TornadoXSRF).
		Command: []string{"jupyter", "notebook", "--no-browser", "--ip=127.0.0.1", "--port={port}", "--NotebookApp.port_retries=0",
			"--NotebookApp.base_url={base}", "--NotebookApp.token=", "--NotebookApp.password=",
			"--NotebookApp.allow_origin={origin}", "--NotebookApp.allow_remote_access=True",
			"--NotebookApp.trust_xheaders=True"},
		TornadoXSRF: true,
	},
	{
		Name: "jupyterlab", DisplayName: "JupyterLab", Program: "jupyter-lab", Port: 18889, ReadyPath: "api",
		Command: []string{"jupyter", "lab", "--no-browser", "--ip=127.0.0.1", "--port={port}", "--ServerApp.port_retries=0",
			"--ServerApp.base_url={base}", "--ServerApp.token=", "--ServerApp.password=",
			"--ServerApp.allow_origin={origin}", "--ServerApp.allow_remote_access=True",
			"--ServerApp.trust_xheaders=True"},
		TornadoXSRF: true,
	},
	{
		Name: "rstudio", DisplayName: "RStudio", Program: "rserver", Port: 18787, ReadyPath: "",
		Command: []string{"rserver", "--www-address=127.0.0.1", "--www-port={port}", "--www-root-path={base}",
			"--auth-none=1", "--server-user={user}", "--server-daemonize=0", "--server-data-dir={home}/.local/share/rstudio-server"},
	},
	{
		Name: "vscode", DisplayName: "VS Code", Program: "code-server", Port: 18080, ReadyPath: "healthz", StripPrefix: true,
		Command: []string{"code-server", "--bind-addr=127.0.0.1:{port}", "--auth=none", "--disable-telemetry", "--disable-update-check", "{home}"},
	},
}

// Catalog returns the catalog's applications, in the order the API lists them.
func Catalog() []App {
	out := make([]App, len(catalog))
	for i, a := range catalog {
		a.Command = append([]string(nil), a.Command...)
		out[i] = a
	}
	return out
}

// Lookup finds a catalog application by name.
func Lookup(name string) (App, bool) {
	for _, a := range Catalog() {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}

// Available returns the names of the catalog applications whose program
// exists according to has.
func Available(has func(program string) bool) []string {
	var out []string
	for _, a := range catalog {
		if has(a.Program) {
			out = append(out, a.Name)
		}
	}
	return out
}

// BasePath is the URL path of an application on its instance's origin, with
// trailing slash.
func BasePath(app string) string {
	return "/" + app + "/"
}

// Spec makes the catalog application concrete for an instance whose
// application origin is origin (https://INSTANCE.<apps domain>[:port]).
// The placeholders {user} and {home} are left for the agent (see Expand).
func (a App) Spec(origin string) Spec {
	base := BasePath(a.Name)
	s := Spec{Name: a.Name, Port: a.Port, StripPrefix: a.StripPrefix, TornadoXSRF: a.TornadoXSRF,
		Command: expand(a.Command, map[string]string{"{port}": strconv.Itoa(a.Port), "{base}": base, "{origin}": origin})}
	if a.ReadyPath != "" {
		s.ReadyPath = base + a.ReadyPath
		if a.StripPrefix {
			s.ReadyPath = "/" + a.ReadyPath
		}
	}
	s.Env = []string{"PORT=" + strconv.Itoa(a.Port), "BASE_URL=" + base}
	return s
}

// Expand replaces {user} and {home} in the spec's command, for the account
// the agent runs it as.
func (s Spec) Expand(user, home string) []string {
	return expand(s.Command, map[string]string{"{user}": user, "{home}": home})
}

func expand(args []string, vars map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for k, v := range vars {
			a = strings.ReplaceAll(a, k, v)
		}
		out[i] = a
	}
	return out
}

// NameRE is what a custom service's name must match: it is a URL path
// segment (never "_chub", which the gateway keeps for its sign-in).
var NameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// Custom is a user-defined application (an Azure customService) as the
// catalog sees it: plain values, so this package needs nothing else.
type Custom struct {
	Name string
	// Command is the command line: one string runs with /bin/sh -c, several
	// are the argv. {port} and {base} are replaced.
	Command []string
	Port    int
	Env     map[string]string
}

// CustomSpec validates a custom service and makes it a Spec. Custom
// services serve at / (the proxy strips the base path) and are ready once
// their port accepts connections; they also get PORT and BASE_URL in their
// environment. The error says what is wrong; the caller adds the field it
// came from.
func CustomSpec(c Custom) (Spec, error) {
	if !NameRE.MatchString(c.Name) {
		return Spec{}, fmt.Errorf("the name %q cannot be a URL path segment: use letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit)", c.Name)
	}
	if _, ok := Lookup(c.Name); ok || c.Name == Terminal {
		return Spec{}, fmt.Errorf("the name %q is taken by a built-in application; choose another", c.Name)
	}
	if c.Port < 1 || c.Port > 65535 {
		return Spec{}, errors.New("it needs a port: endpoints[0].target between 1 and 65535")
	}
	if len(c.Command) == 0 || strings.TrimSpace(strings.Join(c.Command, "")) == "" {
		return Spec{}, errors.New(`it needs a command: additionalProperties.command ("python3 -m http.server {port}" or ["python3", "-m", "http.server", "8000"]) or image.reference`)
	}
	for _, a := range c.Command {
		if strings.ContainsRune(a, 0) {
			return Spec{}, errors.New("its command holds a NUL byte, which no program can be given")
		}
	}
	for k, v := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return Spec{}, fmt.Errorf("the environment variable %q: a name is not empty and has no '=', and neither holds a NUL byte", k)
		}
	}
	base := BasePath(c.Name)
	vars := map[string]string{"{port}": strconv.Itoa(c.Port), "{base}": base}
	argv := expand(c.Command, vars)
	if len(argv) == 1 {
		argv = []string{"/bin/sh", "-c", argv[0]}
	}
	s := Spec{Name: c.Name, Command: argv, Port: c.Port, StripPrefix: true}
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.Env = append(s.Env, k+"="+c.Env[k])
	}
	s.Env = append(s.Env, "PORT="+strconv.Itoa(c.Port), "BASE_URL="+base)
	return s, nil
}

// azureCustomService is the part of Azure's CustomService JSON that makes
// an application.
type azureCustomService struct {
	Name  string `json:"name"`
	Image *struct {
		Reference string `json:"reference"`
	} `json:"image"`
	EnvironmentVariables map[string]struct {
		Value string `json:"value"`
	} `json:"environmentVariables"`
	Endpoints []struct {
		Target int `json:"target"`
	} `json:"endpoints"`
	AdditionalProperties map[string]json.RawMessage `json:"additionalProperties"`
}

// CustomFromAzure reads an Azure CustomService (its JSON) as a Custom:
// name is name, the port is endpoints[0].target, the command is
// additionalProperties.command (a string or an array of strings) or else
// image.reference read as a command line (there is no container engine in
// an instance: the "image" is a program of the instance), and the environment
// is environmentVariables' values.
func CustomFromAzure(customService []byte) (Custom, error) {
	var cs azureCustomService
	if err := json.Unmarshal(customService, &cs); err != nil {
		return Custom{}, err
	}
	c := Custom{Name: cs.Name}
	if len(cs.Endpoints) > 0 {
		c.Port = cs.Endpoints[0].Target
	}
	if raw, ok := cs.AdditionalProperties["command"]; ok {
		var line string
		if err := json.Unmarshal(raw, &line); err == nil {
			c.Command = []string{line}
		} else if err := json.Unmarshal(raw, &c.Command); err != nil {
			return Custom{}, errors.New("additionalProperties.command must be a string or an array of strings")
		}
	} else if cs.Image != nil && strings.TrimSpace(cs.Image.Reference) != "" {
		c.Command = []string{cs.Image.Reference}
	}
	if len(cs.EnvironmentVariables) > 0 {
		c.Env = map[string]string{}
		for k, v := range cs.EnvironmentVariables {
			c.Env[k] = v.Value
		}
	}
	return c, nil
}
