package chub

import (
	"regexp"
	"strings"
)

var (
	workspaceNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$`)
	computeCharsRE  = regexp.MustCompile(`^[a-zA-Z0-9-]*$`)
	endsDashDigits  = regexp.MustCompile(`-[0-9]+$`)
	reservedNames   = []string{"amlcompute", "local", "containerinstance"}
)

// ValidateComputeName checks Azure's rules for a compute instance name and
// says which rule failed.
func ValidateComputeName(name string) error {
	const t = "name"
	switch {
	case name == "":
		return Invalid("InvalidComputeName", t, "a compute name is required")
	case len(name) < 3 || len(name) > 24:
		return Invalid("InvalidComputeName", t, "compute name %q must be 3 to 24 characters long (it has %d)", name, len(name))
	case !isLetter(name[0]):
		return Invalid("InvalidComputeName", t, "compute name %q must start with a letter", name)
	case !computeCharsRE.MatchString(name):
		return Invalid("InvalidComputeName", t, "compute name %q may contain only letters, digits and hyphens", name)
	case endsDashDigits.MatchString(name):
		return Invalid("InvalidComputeName", t, "compute name %q must not end with a hyphen followed by digits", name)
	}
	for _, r := range reservedNames {
		if strings.EqualFold(name, r) {
			return Invalid("InvalidComputeName", t, "compute name %q is reserved; choose another name", name)
		}
	}
	return nil
}

// ValidateWorkspaceName checks Azure's rules for a workspace name.
func ValidateWorkspaceName(name string) error {
	if !workspaceNameRE.MatchString(name) {
		return Invalid("InvalidWorkspaceName", "workspaceName",
			"workspace name %q must be 3 to 33 characters, start with a letter or digit, and contain only letters, digits, '_' and '-'", name)
	}
	return nil
}

func isLetter(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') }
