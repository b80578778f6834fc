package chub

import (
	"regexp"
	"sort"
	"strings"
)

// jobBinding matches ${{inputs.NAME}} and ${{outputs.NAME}} in a command.
var jobBinding = regexp.MustCompile(`\$\{\{\s*(inputs|outputs)\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// ExpandCommand replaces ${{inputs.NAME}} by the literal input's value and
// ${{outputs.NAME}} by outputDir(NAME). A binding to an input or output
// the job does not declare is a KindInvalid error naming it.
func (s JobSpec) ExpandCommand(outputDir func(name string) string) (string, error) {
	var missing []string
	out := jobBinding.ReplaceAllStringFunc(s.Command, func(m string) string {
		g := jobBinding.FindStringSubmatch(m)
		switch g[1] {
		case "inputs":
			if in, ok := s.Inputs[g[2]]; ok {
				return in.Value
			}
		case "outputs":
			if _, ok := s.Outputs[g[2]]; ok {
				return outputDir(g[2])
			}
		}
		missing = append(missing, g[1]+"."+g[2])
		return m
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", Invalid("JobCommandBindingNotFound", "properties.command",
			"the command uses ${{%s}}, which the job does not declare; declare it under properties.%s or remove it from the command",
			strings.Join(missing, "}}, ${{"), strings.SplitN(missing[0], ".", 2)[0])
	}
	return out, nil
}
