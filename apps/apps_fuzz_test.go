package apps

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzCustomService reads an Azure customService as the gateway does
// (CustomFromAzure, then CustomSpec): the command and environment it
// accepts are what the user wrote, with an argv and KEY=VALUE pairs that
// can be executed as written (no NUL byte, no '=' in a name), at a port
// and a base path of its own.
func FuzzCustomService(f *testing.F) {
	for _, s := range []string{
		`{"name":"web","endpoints":[{"target":8000}],"additionalProperties":{"command":"python3 -m http.server {port}"}}`,
		`{"name":"api","endpoints":[{"target":9000,"published":9000}],"additionalProperties":{"command":["uvicorn","app:app","--root-path","{base}"]},"environmentVariables":{"MODE":{"type":"local","value":"dev"}}}`,
		`{"name":"img","image":{"reference":"code-server --port {port}"},"endpoints":[{"target":8080}]}`,
		`{"name":"jupyter","endpoints":[{"target":1}],"additionalProperties":{"command":"x"}}`,
		`{"name":"_chub","endpoints":[{"target":1}],"additionalProperties":{"command":"x"}}`,
		`{"name":"e","endpoints":[{"target":1}],"additionalProperties":{"command":"x"},"environmentVariables":{"PATH=/tmp:x":{"value":"1"}}}`,
		`{"name":"n","endpoints":[{"target":1}],"additionalProperties":{"command":["a\u0000b"]}}`,
		`{"name":"p","endpoints":[{"target":70000}],"additionalProperties":{"command":7}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := CustomFromAzure([]byte(in))
		if err != nil {
			return
		}
		s, err := CustomSpec(c)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("CustomSpec(%+v): an empty error", c)
			}
			return
		}
		if !NameRE.MatchString(s.Name) || s.Name == "_chub" || s.Port < 1 || s.Port > 65535 {
			t.Fatalf("%s: accepted %+v", in, s)
		}
		if _, builtin := Lookup(s.Name); builtin {
			t.Fatalf("%s: a custom service took the built-in name %q", in, s.Name)
		}
		if len(s.Command) == 0 || !s.StripPrefix {
			t.Fatalf("%s: spec %+v", in, s)
		}
		for _, a := range s.Command {
			if strings.ContainsRune(a, 0) {
				t.Fatalf("%s: the argv %q holds a NUL byte, which no program can be given", in, s.Command)
			}
		}
		names := map[string]bool{}
		for _, kv := range s.Env {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" || strings.ContainsRune(kv, 0) {
				t.Fatalf("%s: environment entry %q", in, kv)
			}
			names[k] = true
		}
		for k := range c.Env {
			if !names[k] {
				t.Fatalf("%s: the variable %q the user named became %v", in, k, s.Env)
			}
		}
		if s.Env[len(s.Env)-2] != "PORT="+strconv.Itoa(s.Port) || s.Env[len(s.Env)-1] != "BASE_URL="+BasePath(s.Name) {
			t.Fatalf("%s: environment %v does not end with PORT and BASE_URL", in, s.Env)
		}
	})
}
