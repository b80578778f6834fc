package chub_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection keeps the architecture honest: the domain imports
// only the standard library, the agent and clients know nothing of the
// server, and the control plane meets runtimes and stores only through the
// domain's interfaces.
func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/computehub/chub"
	forbidden := map[string][]string{
		"":               {"/"}, // the domain: standard library only
		"/agent":         {"/server", "/api", "/sqlite", "/reconciler", "/lifecycle", "/runtime", "/cli", "/client"},
		"/streamproto":   {"/server", "/api", "/sqlite", "/reconciler", "/lifecycle", "/runtime", "/cli", "/client", "/agent"},
		"/runtime/local": {"/server", "/api", "/sqlite", "/reconciler", "/lifecycle", "/cli", "/client"},
		"/api":           {"/runtime/", "/sqlite", "/reconciler", "/server", "/cli"},
		"/reconciler":    {"/runtime/", "/sqlite", "/api", "/server", "/cli"},
		"/lifecycle":     {"/runtime/", "/sqlite", "/api", "/reconciler", "/server", "/cli"},
		"/sqlite":        {"/runtime/", "/api", "/reconciler", "/lifecycle", "/server", "/cli"},
		"/client":        {"/server", "/api", "/sqlite", "/reconciler", "/lifecycle", "/runtime/", "/agent", "/cli"},
		// The job controller meets runtimes and stores only through the
		// domain; the wire format and the work queue depend on nothing of ours.
		"/jobs":      {"/runtime/", "/sqlite", "/api", "/reconciler", "/lifecycle", "/server", "/cli", "/client"},
		"/jobproto":  {"/"},
		"/workqueue": {"/"},
		"/artifacts": {"/runtime/", "/sqlite", "/api", "/reconciler", "/lifecycle", "/server", "/cli", "/client", "/agent", "/jobs"},
		// The SSH gateway meets the store and the agent only through the domain and its own small interfaces.
		"/gateway/sshgate": {"/server", "/api", "/sqlite", "/reconciler", "/lifecycle", "/runtime/", "/agent", "/cli", "/client"},
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		rules, ok := forbidden[strings.TrimPrefix(pkg, mod)]
		if !ok || !strings.HasPrefix(pkg, mod) {
			continue
		}
		seen++
		for _, imp := range strings.Fields(imports) {
			if !strings.HasPrefix(imp, mod) && pkg == mod && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				t.Errorf("the domain package imports %s; it may import only the standard library", imp)
			}
			if !strings.HasPrefix(imp, mod+"/") {
				continue
			}
			rel := strings.TrimPrefix(imp, mod)
			for _, f := range rules {
				if strings.HasPrefix(rel+"/", f) || rel == strings.TrimSuffix(f, "/") {
					t.Errorf("%s imports %s, which it must not", pkg, imp)
				}
			}
		}
	}
	if seen != len(forbidden) {
		t.Fatalf("checked %d of the %d packages with rules; a package was renamed?", seen, len(forbidden))
	}
}
