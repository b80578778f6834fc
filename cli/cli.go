// Package cli is the chub command line: the server and agent entry points
// and the client verbs, with the seed's `computetarget` command shapes.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/computehub/chub/client"
)

// exitError carries a process exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// globals are the flags every client verb shares.
type globals struct {
	output    string
	verbose   bool
	workspace string
	group     string
	stdout    io.Writer
	stderr    io.Writer
}

// Main runs the command line with args and returns the exit code.
func Main(args []string) int {
	g := &globals{stdout: os.Stdout, stderr: os.Stderr}
	root := newRoot(g)
	root.SetArgs(azureBoolArgs(root, args))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(g.stderr, "Error:", describe(err))
		return 1
	}
}

func describe(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return fmt.Sprintf("%s [%s, HTTP %d]", ce.Message, ce.Code, ce.StatusCode)
	}
	return err.Error()
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "chub",
		Short:         "ComputeHub: self-hosted compute instances, managed the way Azure Machine Learning manages them",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "show progress and details")
	root.AddCommand(serverCmd(), agentCmd(), loginCmd(g), userCmd(g), tokenCmd(g), workspaceCmd(g),
		computetargetCmd(g), vmsizeCmd(g), usageCmd(g), benchCmd(g), roleCmd(g), quotaCmd(g), auditCmd(g), imageCmd(g), jobCmd(g))
	root.AddCommand(terminalCmd(g, "terminal NAME"))
	root.AddCommand(sftpServerCmd())
	return root
}

// addScopeFlags adds the seed's -w/-g flags.
func addScopeFlags(cmd *cobra.Command, g *globals) {
	cmd.Flags().StringVarP(&g.workspace, "workspace-name", "w", "", "workspace (default from chub login, else 'default')")
	cmd.Flags().StringVarP(&g.group, "resource-group", "g", "", "resource group (default from chub login, else 'default')")
}

// Settings is what `chub login` saves.
type Settings struct {
	Server        string `json:"server"`
	Token         string `json:"token"`
	CACert        string `json:"caCert,omitempty"`
	Subscription  string `json:"subscription,omitempty"`
	ResourceGroup string `json:"resourceGroup,omitempty"`
	Workspace     string `json:"workspace,omitempty"`
	Location      string `json:"location,omitempty"`
}

// configPath is where `chub login` writes its settings.
func configPath() string {
	if p := os.Getenv("CHUB_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = filepath.Join(os.Getenv("HOME"), ".config")
	}
	return filepath.Join(dir, "chub", "config.json")
}

func loadSettings() Settings {
	var s Settings
	if data, err := os.ReadFile(configPath()); err == nil {
		_ = json.Unmarshal(data, &s)
	}
	for env, dst := range map[string]*string{
		"CHUB_SERVER": &s.Server, "CHUB_TOKEN": &s.Token, "CHUB_CA_CERT": &s.CACert,
		"CHUB_SUBSCRIPTION": &s.Subscription, "CHUB_RESOURCE_GROUP": &s.ResourceGroup, "CHUB_WORKSPACE": &s.Workspace, "CHUB_LOCATION": &s.Location,
	} {
		if v := os.Getenv(env); v != "" {
			*dst = v
		}
	}
	if s.Location == "" {
		s.Location = "local"
	}
	if s.Workspace == "" {
		s.Workspace = "default"
	}
	if s.ResourceGroup == "" {
		s.ResourceGroup = "default"
	}
	return s
}

// connect makes a client from saved settings, environment and flags.
func (g *globals) connect() (*client.Client, Settings, error) {
	s := loadSettings()
	if g.workspace != "" {
		s.Workspace = g.workspace
	}
	if g.group != "" {
		s.ResourceGroup = g.group
	}
	if s.Token == "" && s.Server != "" {
		return nil, s, errors.New("no API token: run 'chub login --server URL --token-file FILE' or set CHUB_TOKEN")
	}
	c, err := client.New(client.Config{Server: s.Server, Token: s.Token, CACert: s.CACert, Subscription: s.Subscription, ResourceGroup: s.ResourceGroup, Workspace: s.Workspace})
	return c, s, err
}

func (g *globals) json() bool { return g.output == "json" }

func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func validateOutput(g *globals) error {
	if g.output != "table" && g.output != "json" {
		return fmt.Errorf("--output must be table or json, got %q", g.output)
	}
	return nil
}
