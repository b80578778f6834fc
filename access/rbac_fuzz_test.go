package access

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/computehub/chub"
)

// globMatch is Azure's action matching written out: '*' matches any run
// of characters, every other character itself ignoring case.
func globMatch(pattern, action []rune) bool {
	if len(pattern) == 0 {
		return len(action) == 0
	}
	if pattern[0] == '*' {
		for i := 0; i <= len(action); i++ {
			if globMatch(pattern[1:], action[i:]) {
				return true
			}
		}
		return false
	}
	return len(action) > 0 && strings.EqualFold(string(pattern[0]), string(action[0])) && globMatch(pattern[1:], action[1:])
}

// FuzzMatchAction compares MatchAction, which custom role definitions'
// actions and notActions go through, with globMatch.
func FuzzMatchAction(f *testing.F) {
	for _, s := range [][2]string{
		{"*", "Microsoft.MachineLearningServices/workspaces/computes/write"},
		{"*/read", "Microsoft.MachineLearningServices/workspaces/read"},
		{"Microsoft.Authorization/*/Write", "microsoft.authorization/roleAssignments/write"},
		{"Microsoft.MachineLearningServices/workspaces/*/action", "Microsoft.MachineLearningServices/workspaces/computes/start/action"},
		{"a.b", "aXb"},
		{"(a|b)+[", "a"},
		{"**x*", "x"},
		{"ComputeHub/users/*", "ComputeHub/users/manage/action"},
		{"*", "line\nbreak"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, action string) {
		got := MatchAction(pattern, action)
		if !utf8.ValidString(pattern) || !utf8.ValidString(action) {
			return // JSON gives the store only valid UTF-8; not panicking is all that matters here
		}
		if len(pattern) > 64 || len(action) > 256 {
			return // globMatch is exponential
		}
		if want := globMatch([]rune(pattern), []rune(action)); got != want {
			t.Fatalf("MatchAction(%q, %q) = %v; want %v", pattern, action, got, want)
		}
		if strings.EqualFold(pattern, action) && !got {
			t.Fatalf("MatchAction(%q, %q): a pattern does not match itself", pattern, action)
		}
	})
}

// FuzzScopeCovers: a scope covers itself and what lies below it (a path
// segment boundary after it), never a sibling that merely shares a prefix;
// "/" covers everything.
func FuzzScopeCovers(f *testing.F) {
	for _, s := range [][2]string{
		{"/subscriptions/a", "/subscriptions/a/resourceGroups/g"},
		{"/subscriptions/a", "/subscriptions/ab"},
		{"/subscriptions/A/", "/subscriptions/a"},
		{"/", "/subscriptions/x"},
		{"", "/x"},
		{"/subscriptions/a/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w/computes/c", "/subscriptions/a/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, scope, resource string) {
		got := ScopeCovers(scope, resource)
		if scope == "/" {
			if !got {
				t.Fatalf("/ does not cover %q", resource)
			}
			return
		}
		s := strings.ToLower(strings.TrimRight(scope, "/"))
		r := strings.ToLower(strings.TrimRight(resource, "/"))
		want := r == s || (len(r) > len(s) && r[:len(s)] == s && r[len(s)] == '/')
		if got != want {
			t.Fatalf("ScopeCovers(%q, %q) = %v; want %v", scope, resource, got, want)
		}
		if got && !ScopeCovers(scope, scope) {
			t.Fatalf("%q does not cover itself", scope)
		}
	})
}

// FuzzAllows: a NotAction always wins over an Action, and a role with no
// actions allows nothing.
func FuzzAllows(f *testing.F) {
	f.Add("*", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/roleAssignments/write")
	f.Add("*/read", "", "Microsoft.MachineLearningServices/workspaces/read")
	f.Add("", "", "x")
	f.Fuzz(func(t *testing.T, action, notAction, want string) {
		role := chub.RoleDefinition{Actions: []string{action}, NotActions: []string{notAction}}
		if action == "" {
			role.Actions = nil
		}
		if notAction == "" {
			role.NotActions = nil
		}
		got := Allows(role, want)
		if got && notAction != "" && MatchAction(notAction, want) {
			t.Fatalf("role %+v allows %q, which a NotAction excludes", role, want)
		}
		if got && (len(role.Actions) == 0 || !MatchAction(action, want)) {
			t.Fatalf("role %+v allows %q, which no Action matches", role, want)
		}
		if !got && len(role.Actions) > 0 && MatchAction(action, want) && (notAction == "" || !MatchAction(notAction, want)) {
			t.Fatalf("role %+v refuses %q", role, want)
		}
	})
}
