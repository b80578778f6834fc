package cli

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestAzureBoolArgs(t *testing.T) {
	create := "computetarget create computeinstance -n x -s STANDARD_DS3_V2 "
	cases := []struct {
		in, want string
		flag     string // a flag of the command whose parsed value is checked
		value    string
	}{
		{create + "--ssh-public-access True", create + "--ssh-public-access=true", "ssh-public-access", "true"},
		{create + "--ssh-public-access False", create + "--ssh-public-access=false", "ssh-public-access", "false"},
		{create + "--ssh-public-access yes", create + "--ssh-public-access=true", "ssh-public-access", "true"},
		{create + "--ssh-public-access=NO", create + "--ssh-public-access=false", "ssh-public-access", "false"},
		{create + "--ssh-public-access", create + "--ssh-public-access", "ssh-public-access", "true"},
		{create + "--ssh-public-access --no-wait", create + "--ssh-public-access --no-wait", "no-wait", "true"},
		{create + "--no-wait False", create + "--no-wait=false", "no-wait", "false"},
		{create + "-v true", create + "--verbose=true", "verbose", "true"},
		// Not a boolean flag, or after --: left alone.
		{create + "--description yes", create + "--description yes", "description", "yes"},
		{"job create -c ci --stream -- echo yes", "job create -c ci --stream -- echo yes", "stream", "true"},
		{"job create -c ci -- --stream no", "job create -c ci -- --stream no", "stream", "false"},
	}
	for _, tc := range cases {
		root := newRoot(&globals{stdout: io.Discard, stderr: io.Discard})
		got := azureBoolArgs(root, strings.Fields(tc.in))
		if !slices.Equal(got, strings.Fields(tc.want)) {
			t.Errorf("azureBoolArgs(%q) = %q; want %q", tc.in, strings.Join(got, " "), tc.want)
			continue
		}
		cmd, rest, err := root.Find(got)
		if err != nil {
			t.Fatalf("find %q: %v", tc.in, err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Errorf("parse %q: %v", strings.Join(got, " "), err)
			continue
		}
		f := cmd.Flags().Lookup(tc.flag)
		if f == nil {
			t.Fatalf("%s has no flag --%s", cmd.CommandPath(), tc.flag)
		}
		if f.Value.String() != tc.value {
			t.Errorf("%q: --%s = %s; want %s", tc.in, tc.flag, f.Value.String(), tc.value)
		}
	}
}

func TestBoolWord(t *testing.T) {
	for in, want := range map[string]bool{"True": true, "true": true, "YES": true, "1": true, "False": false, "no": false, "0": false} {
		if got, ok := boolWord(in); !ok || got != want {
			t.Errorf("boolWord(%q) = %v, %v; want %v, true", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "maybe", "Enabled", "tru"} {
		if _, ok := boolWord(in); ok {
			t.Errorf("boolWord(%q) accepted; want refused", in)
		}
	}
}

// FuzzAzureBoolArgs: no argument list panics, nothing after "--" changes,
// and the rewrite never adds or reorders words other than joining a
// boolean flag with its value.
func FuzzAzureBoolArgs(f *testing.F) {
	f.Add("computetarget create computeinstance -n x --ssh-public-access True --no-wait no")
	f.Add("job create -c ci --stream -- echo yes")
	f.Add("-v true -- --verbose false")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		root := newRoot(&globals{stdout: io.Discard, stderr: io.Discard})
		got := azureBoolArgs(root, args)
		if len(got) > len(args) {
			t.Fatalf("azureBoolArgs(%q) = %q: more words than given", args, got)
		}
		if i := slices.Index(args, "--"); i >= 0 {
			j := slices.Index(got, "--")
			if j < 0 || !slices.Equal(got[j:], args[i:]) {
				t.Fatalf("azureBoolArgs(%q) = %q: changed what follows --", args, got)
			}
		}
	})
}
