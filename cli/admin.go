package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/computehub/chub/api"
	"github.com/computehub/chub/client"
)

func loginCmd(g *globals) *cobra.Command {
	var s Settings
	var tokenFile string
	cmd := &cobra.Command{
		Use:     "login",
		Short:   "Save the server address, token and CA so later commands need no flags",
		Example: `  chub login --server https://127.0.0.1:8443 --token-file data/admin-token --ca-cert data/tls/ca.crt`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("read token file: %w", err)
				}
				s.Token = strings.TrimSpace(string(b))
			}
			if s.Server == "" || s.Token == "" {
				return fmt.Errorf("--server and --token (or --token-file) are required")
			}
			if s.CACert != "" {
				abs, err := filepath.Abs(s.CACert)
				if err != nil {
					return err
				}
				s.CACert = abs
			}
			c, err := client.New(client.Config{Server: s.Server, Token: s.Token, CACert: s.CACert, Subscription: s.Subscription, ResourceGroup: s.ResourceGroup, Workspace: s.Workspace})
			if err != nil {
				return err
			}
			me, err := c.Me(cmd.Context())
			if err != nil {
				return fmt.Errorf("the server refused the login: %s", describe(err))
			}
			path := configPath()
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			data, _ := json.MarshalIndent(s, "", "  ")
			if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Logged in to %s as %s; settings saved in %s\n", s.Server, me.Name, path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.Server, "server", "", "server URL, e.g. https://127.0.0.1:8443")
	f.StringVar(&s.Token, "token", "", "API token")
	f.StringVar(&tokenFile, "token-file", "", "file holding the API token")
	f.StringVar(&s.CACert, "ca-cert", "", "CA certificate to trust (the server prints its path at first start)")
	f.StringVar(&s.Subscription, "subscription", "", "default subscription id")
	f.StringVar(&s.ResourceGroup, "resource-group", "", "default resource group")
	f.StringVar(&s.Workspace, "workspace", "", "default workspace")
	f.StringVar(&s.Location, "location", "", "the server's region (default local)")
	return cmd
}

func userCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (administrators)"}
	var display, tenant string
	var admin bool
	create := &cobra.Command{
		Use:   "create NAME",
		Args:  cobra.ExactArgs(1),
		Short: "Create a user",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), args[0], display, tenant, admin)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(u)
			}
			fmt.Fprintf(g.stdout, "Created user %s (object id %s, tenant %s). Give them a token with: chub token create --user %s\n", u.Name, u.ObjectID, u.TenantID, u.Name)
			return nil
		},
	}
	create.Flags().StringVar(&display, "display-name", "", "display name")
	create.Flags().StringVar(&tenant, "tenant-id", "", "tenant id")
	create.Flags().BoolVar(&admin, "admin", false, "make the user an administrator")
	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			us, err := c.ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(us)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tOBJECT ID\tTENANT\tADMIN")
			for _, u := range us {
				fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", u.Name, u.ObjectID, u.TenantID, u.Admin)
			}
			return w.Flush()
		},
	}
	del := &cobra.Command{
		Use: "delete NAME", Args: cobra.ExactArgs(1), Short: "Delete a user with their tokens and role assignments",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Deleted user %s.\n", args[0])
			return nil
		},
	}
	password := &cobra.Command{
		Use: "set-password NAME", Args: cobra.ExactArgs(1), Short: "Set a user's password for the browser sign-in (read from stdin)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			pw, err := readSecret(cmd, "Password: ")
			if err != nil {
				return err
			}
			if err := c.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Password of %s set.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del, password)
	return cmd
}

// readSecret reads one line from stdin, without echo on a terminal.
func readSecret(cmd *cobra.Command, prompt string) (string, error) {
	if term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprint(os.Stderr, prompt)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read the secret from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func tokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	var user, name string
	var days int
	create := &cobra.Command{
		Use:   "create --user NAME",
		Short: "Create an API token (shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				return fmt.Errorf("--user is required")
			}
			if days < 0 || days > api.MaxTokenDays {
				return fmt.Errorf("--expires-in-days must be 1 to %d (0: the token never expires), got %d", api.MaxTokenDays, days)
			}
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), user, name, days)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(t)
			}
			fmt.Fprintln(g.stdout, t.Token)
			fmt.Fprintf(g.stderr, "Token for %s created; it is shown only now.\n", t.User)
			return nil
		},
	}
	create.Flags().StringVar(&user, "user", "", "user the token is for")
	create.Flags().StringVar(&name, "name", "", "a label for the token")
	create.Flags().IntVar(&days, "expires-in-days", 0, "days until the token expires, 1 to 3650 (0: never)")
	var id string
	list := &cobra.Command{
		Use: "list --user NAME", Short: "List a user's tokens (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			if user == "" {
				me, err := c.Me(cmd.Context())
				if err != nil {
					return err
				}
				user = me.Name
			}
			ts, err := c.ListTokens(cmd.Context(), user)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(ts)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tCREATED\tEXPIRES\tREVOKED")
			for _, t := range ts {
				exp, rev := "never", ""
				if t.ExpiresAt != nil {
					exp = t.ExpiresAt.Local().Format("2006-01-02 15:04")
				}
				if t.RevokedAt != nil {
					rev = t.RevokedAt.Local().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Local().Format("2006-01-02 15:04"), exp, rev)
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&user, "user", "", "user (default: you)")
	revoke := &cobra.Command{
		Use: "revoke --user NAME --id ID", Short: "Revoke a token", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" || id == "" {
				return fmt.Errorf("--user and --id are required (chub token list --user NAME shows ids)")
			}
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), user, id); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Revoked token %s of %s.\n", id, user)
			return nil
		},
	}
	revoke.Flags().StringVar(&user, "user", "", "user")
	revoke.Flags().StringVar(&id, "id", "", "token id")
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func workspaceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "workspace", Short: "Manage workspaces"}
	var desc string
	create := &cobra.Command{
		Use: "create NAME", Args: cobra.ExactArgs(1), Short: "Create or update a workspace",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			w, err := c.PutWorkspace(cmd.Context(), args[0], desc)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(w)
			}
			fmt.Fprintf(g.stdout, "Workspace %s is ready.\n", w.Name)
			return nil
		},
	}
	create.Flags().StringVar(&desc, "description", "", "description")
	del := &cobra.Command{
		Use: "delete NAME", Args: cobra.ExactArgs(1), Short: "Delete an empty workspace",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteWorkspace(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Workspace %s deleted.\n", args[0])
			return nil
		},
	}
	list := &cobra.Command{
		Use: "list", Args: cobra.NoArgs, Short: "List workspaces",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			ws, err := c.ListWorkspaces(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(ws)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tLOCATION\tDESCRIPTION")
			for _, x := range ws {
				fmt.Fprintf(w, "%s\t%s\t%v\n", x.Name, x.Location, x.Properties["description"])
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(create, del, list)
	return cmd
}

func vmsizeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "vmsize", Short: "VM sizes offered"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Args: cobra.NoArgs, Short: "List the VM sizes of the region",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			sizes, err := c.VMSizes(cmd.Context(), s.Location)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(sizes)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tFAMILY\tVCPUS\tMEMORY GB\tGPUS")
			for _, z := range sizes {
				fmt.Fprintf(w, "%s\t%s\t%d\t%g\t%d\n", z.Name, z.Family, z.VCPUs, z.MemoryGB, z.GPUs)
			}
			return w.Flush()
		},
	})
	return cmd
}

func usageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "usage", Short: "Core usage and quota of the region"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Args: cobra.NoArgs, Short: "List dedicated-core usage per VM family",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			us, err := c.Usages(cmd.Context(), s.Location)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(us)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tUSED\tLIMIT")
			for _, u := range us {
				fmt.Fprintf(w, "%s\t%d\t%d\n", u.Name.LocalizedValue, u.CurrentValue, u.Limit)
			}
			return w.Flush()
		},
	})
	return cmd
}
