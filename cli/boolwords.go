package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// boolWord reads a boolean as the Azure CLI takes one: true/false, yes/no,
// in any case (and 1/0).
func boolWord(s string) (v, ok bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "1":
		return true, true
	case "false", "no", "0":
		return false, true
	}
	return false, false
}

// isBoolFlag reports whether a flag takes no value of its own when bare
// (a bool flag, or a string flag with a boolean default such as
// --ssh-public-access).
func isBoolFlag(f *pflag.Flag) bool {
	return f != nil && (f.Value.Type() == "bool" || f.NoOptDefVal == "true")
}

// azureBoolArgs rewrites the Azure CLI's boolean forms, "--flag True",
// "--flag=yes", "--flag no", into what the flag parser takes
// ("--flag=true", "--flag=false"), for the boolean flags of the command
// args name. Everything after "--" is left as it is.
func azureBoolArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return args
	}
	lookup := func(name string, short bool) *pflag.Flag {
		for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
			var f *pflag.Flag
			if short {
				f = fs.ShorthandLookup(name)
			} else {
				f = fs.Lookup(name)
			}
			if f != nil {
				return f
			}
		}
		return nil
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		var name string
		short := false
		switch {
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name = a[2:]
		case strings.HasPrefix(a, "-") && len(a) == 2:
			name, short = a[1:], true
		default:
			out = append(out, a)
			continue
		}
		flagName, value, hasValue := strings.Cut(name, "=")
		f := lookup(flagName, short)
		if !isBoolFlag(f) {
			out = append(out, a)
			continue
		}
		if hasValue {
			if v, ok := boolWord(value); ok {
				a = fmt.Sprintf("--%s=%t", f.Name, v)
			}
			out = append(out, a)
			continue
		}
		if i+1 < len(args) {
			if v, ok := boolWord(args[i+1]); ok {
				out = append(out, fmt.Sprintf("--%s=%t", f.Name, v))
				i++
				continue
			}
		}
		out = append(out, a)
	}
	return out
}
