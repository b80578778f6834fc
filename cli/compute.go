package cli

import (
	"context"
	"fmt"

	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

func computetargetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "computetarget",
		Aliases: []string{"compute"},
		Short:   "Create and manage compute instances (the seed's 'az ml computetarget' shapes)",
	}
	create := &cobra.Command{Use: "create", Short: "Create a compute target"}
	create.AddCommand(createInstanceCmd(g))
	cmd.AddCommand(create)
	for _, op := range []chub.OperationName{chub.OpStart, chub.OpStop, chub.OpRestart} {
		verb := &cobra.Command{Use: strings.ToLower(string(op)), Short: string(op) + " a compute target"}
		verb.AddCommand(actCmd(g, op, "computeinstance"))
		cmd.AddCommand(verb)
	}
	ci := &cobra.Command{Use: "computeinstance", Short: "Verbs on a compute instance"}
	for _, op := range []chub.OperationName{chub.OpStart, chub.OpStop, chub.OpRestart} {
		ci.AddCommand(actCmd(g, op, strings.ToLower(string(op))))
	}
	ci.AddCommand(createInstanceCmdNamed(g, "create"), deleteCmd(g), showCmd(g), listCmd(g), execCmd(g))
	ci.AddCommand(terminalCmd(g, "terminal -n NAME"))
	cmd.AddCommand(ci, deleteCmd(g), listCmd(g), showCmd(g))
	return cmd
}

func createInstanceCmd(g *globals) *cobra.Command {
	return createInstanceCmdNamed(g, "computeinstance")
}

func createInstanceCmdNamed(g *globals, use string) *cobra.Command {
	var name, size, desc, sshKey, sshAccess, vnet, subnet, vnetRG, userOID, userTenant, image string
	var tags []string
	var noWait bool
	var maxJobs int
	cmd := &cobra.Command{
		Use:   use,
		Short: "Create a compute instance",
		Example: `  chub computetarget create computeinstance -n instance -s "STANDARD_D3_V2" -v
  chub computetarget create computeinstance -n dev1 -s Standard_DS3_v2 --ssh-public-access --admin-user-ssh-public-key "$(cat ~/.ssh/id_ed25519.pub)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(g); err != nil {
				return err
			}
			if name == "" || size == "" {
				return fmt.Errorf("both --name/-n and --vm-size/-s are required, e.g. chub computetarget create computeinstance -n instance -s STANDARD_D3_V2")
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			req := client.CreateRequest{Workspace: s.Workspace, Name: name, Location: s.Location, Description: desc, Tags: map[string]string{}}
			for _, t := range tags {
				k, v, _ := strings.Cut(t, "=")
				if k == "" {
					return fmt.Errorf("--tag %q must be key=value", t)
				}
				req.Tags[k] = v
			}
			req.Settings.VMSize = size
			req.Settings.Image = image
			if cmd.Flags().Changed("max-concurrent-jobs") {
				if maxJobs < 1 {
					return fmt.Errorf("--max-concurrent-jobs %d: give 1 or more (at most the size's vCPUs; default: the size's vCPUs)", maxJobs)
				}
				req.Settings.MaxConcurrentJobs = maxJobs
			}
			access := "Disabled"
			if cmd.Flags().Changed("ssh-public-access") {
				on, ok := boolWord(sshAccess)
				if !ok {
					return fmt.Errorf("--ssh-public-access %q: give True or False (or yes/no), or the bare flag for True", sshAccess)
				}
				access = map[bool]string{true: "Enabled", false: "Disabled"}[on]
			}
			req.Settings.SSHSettings = &chub.SSHSettings{SSHPublicAccess: access, AdminPublicKey: sshKey}
			if vnet != "" || subnet != "" {
				if vnet == "" || subnet == "" {
					return fmt.Errorf("--vnet-name and --subnet-name go together")
				}
				rg := vnetRG
				if rg == "" {
					rg = s.ResourceGroup
				}
				sub := s.Subscription
				if sub == "" {
					sub = "00000000-0000-0000-0000-000000000000"
				}
				req.Settings.Subnet = &chub.ResourceRef{ID: fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/virtualNetworks/%s/subnets/%s", sub, rg, vnet, subnet)}
			}
			if userOID != "" || userTenant != "" {
				req.Settings.PersonalComputeInstanceSettings = &chub.PersonalComputeInstanceSettings{AssignedUser: &chub.AssignedUser{ObjectID: userOID, TenantID: userTenant}}
			}
			// The API's PUT updates an existing instance's description and
			// tags (Azure's semantics); create never does.
			if _, err := c.GetCompute(cmd.Context(), s.Workspace, name); err == nil {
				return fmt.Errorf("compute instance %s already exists in workspace %s; delete it first (chub computetarget delete -n %s -w %s) or pick another name", name, s.Workspace, name, s.Workspace)
			} else if !client.IsNotFound(err) {
				return err
			}
			ci, op, err := c.CreateCompute(cmd.Context(), req)
			if err != nil {
				return err
			}
			if op == nil {
				// Another create of the same name came first.
				return fmt.Errorf("compute instance %s already exists in workspace %s (created meanwhile); its description and tags are now this command's", name, s.Workspace)
			}
			g.progressf("Creating compute instance %q (%s) in workspace %s...\n", name, size, s.Workspace)
			if noWait {
				g.progressf("Not waiting (--no-wait); follow it with: chub computetarget show -n %s\n", name)
				return g.showCompute(ci)
			}
			return g.wait(cmd.Context(), c, op, s.Workspace, name, "Create")
		},
	}
	f := cmd.Flags()
	f.StringVarP(&name, "name", "n", "", "name of the compute instance (3-24 characters)")
	f.StringVarP(&size, "vm-size", "s", "", "VM size, e.g. STANDARD_D3_V2 (see chub vmsize list)")
	f.StringVar(&desc, "description", "", "description")
	f.StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable)")
	f.StringVar(&sshKey, "admin-user-ssh-public-key", "", "OpenSSH public key for SSH access")
	f.StringVar(&sshAccess, "ssh-public-access", "false", "enable SSH access (needs --admin-user-ssh-public-key)")
	f.Lookup("ssh-public-access").NoOptDefVal = "true"
	f.StringVar(&vnet, "vnet-name", "", "virtual network name")
	f.StringVar(&subnet, "subnet-name", "", "subnet name")
	f.StringVar(&vnetRG, "vnet-resourcegroup-name", "", "resource group of the virtual network")
	f.StringVar(&userOID, "user-object-id", "", "object id of the user to create the instance for")
	f.StringVar(&userTenant, "user-tenant-id", "", "tenant id of the user to create the instance for")
	f.BoolVar(&noWait, "no-wait", false, "return at once instead of waiting for the instance to run")
	f.StringVar(&image, "image", "", "image to start from (default: the server's host image; see chub image list)")
	f.IntVar(&maxJobs, "max-concurrent-jobs", 0, "jobs the instance runs at once, 1 to the size's vCPUs (default: its vCPUs)")
	addScopeFlags(cmd, g)
	return cmd
}

func (g *globals) progressf(format string, args ...any) {
	if g.json() && !g.verbose {
		return
	}
	fmt.Fprintf(g.stderr, format, args...)
}

// wait follows an operation, printing each state with elapsed time.
func (g *globals) wait(ctx context.Context, c *client.Client, op *client.Operation, ws, name, what string) error {
	start := time.Now()
	follow := name
	if what == "Delete" {
		follow = "" // the instance disappears; only the operation is followed
	}
	var dots int
	_, err := c.Wait(ctx, op, ws, follow, func(state chub.State, elapsed time.Duration) {
		g.progressf("  %6.1fs  %s\n", elapsed.Seconds(), state)
		dots++
	})
	elapsed := time.Since(start).Seconds()
	if err != nil {
		g.progressf("%s of %q failed after %.1fs.\n", what, name, elapsed)
		return err
	}
	if what == "Delete" {
		g.progressf("Succeeded: compute instance %q deleted (%.1fs).\n", name, elapsed)
		if g.json() {
			return g.printJSON(map[string]any{"name": name, "status": "Deleted"})
		}
		return nil
	}
	ci, err := c.GetCompute(ctx, ws, name)
	if err != nil {
		return err
	}
	g.progressf("Succeeded: compute instance %q is %s (%.1fs).\n", name, ci.Properties.Properties.State, elapsed)
	if g.json() {
		return g.printJSON(ci)
	}
	return nil
}

func actCmd(g *globals, op chub.OperationName, use string) *cobra.Command {
	var name string
	var noWait, cancelJobs bool
	cmd := &cobra.Command{
		Use:   use,
		Short: string(op) + " a compute instance",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(g); err != nil {
				return err
			}
			if name == "" {
				return fmt.Errorf("--name/-n is required")
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			var o *client.Operation
			if cancelJobs {
				o, err = c.StopCompute(cmd.Context(), s.Workspace, name, true)
			} else {
				o, err = c.Act(cmd.Context(), s.Workspace, name, op)
			}
			if err != nil {
				return err
			}
			g.progressf("%s compute instance %q%s...\n", map[chub.OperationName]string{chub.OpStart: "Starting", chub.OpStop: "Stopping", chub.OpRestart: "Restarting"}[op], name,
				map[bool]string{true: " (canceling its jobs)", false: ""}[cancelJobs])
			if noWait {
				return nil
			}
			return g.wait(cmd.Context(), c, o, s.Workspace, name, string(op))
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "name of the compute instance")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return at once")
	if op == chub.OpStop {
		cmd.Long = "Stop a compute instance. Without --cancel-jobs the stop waits for its running jobs to end\n(queued jobs stay Queued and run after the next start); with it, its jobs are canceled first."
		cmd.Flags().BoolVar(&cancelJobs, "cancel-jobs", false, "cancel the instance's jobs instead of waiting for running ones to end")
	}
	addScopeFlags(cmd, g)
	return cmd
}

func deleteCmd(g *globals) *cobra.Command {
	var name string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a compute instance and its disk",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return fmt.Errorf("--name/-n is required")
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			o, err := c.DeleteCompute(cmd.Context(), s.Workspace, name)
			if err != nil {
				return err
			}
			if o == nil {
				g.progressf("Compute instance %q does not exist; nothing to delete.\n", name)
				return nil
			}
			g.progressf("Deleting compute instance %q...\n", name)
			if noWait {
				return nil
			}
			return g.wait(cmd.Context(), c, o, s.Workspace, name, "Delete")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "name of the compute instance")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return at once")
	addScopeFlags(cmd, g)
	return cmd
}

func showCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a compute instance",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(g); err != nil {
				return err
			}
			if name == "" {
				return fmt.Errorf("--name/-n is required")
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			ci, err := c.GetCompute(cmd.Context(), s.Workspace, name)
			if err != nil {
				return err
			}
			return g.showCompute(ci)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "name of the compute instance")
	addScopeFlags(cmd, g)
	return cmd
}

func (g *globals) showCompute(ci *client.Compute) error {
	if g.json() {
		return g.printJSON(ci)
	}
	p := ci.Properties.Properties
	w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
	row("Name", ci.Name)
	row("State", string(p.State))
	row("Provisioning", ci.Properties.ProvisioningState)
	row("VM size", p.VMSize)
	row("Location", ci.Location)
	if p.Image != "" {
		row("Image", p.Image)
	}
	if p.CreatedBy != nil {
		row("Created by", p.CreatedBy.UserName)
	}
	if a := p.PersonalComputeInstanceSettings; a != nil && a.AssignedUser != nil {
		row("Assigned to", a.AssignedUser.ObjectID)
	}
	if ci.Properties.CreatedOn != nil {
		row("Created on", ci.Properties.CreatedOn.Local().Format(time.DateTime))
	}
	if ci.Properties.Description != "" {
		row("Description", ci.Properties.Description)
	}
	if len(ci.Tags) > 0 {
		var parts []string
		for k, v := range ci.Tags {
			parts = append(parts, k+"="+v)
		}
		row("Tags", strings.Join(parts, ", "))
	}
	if p.SSHSettings != nil {
		row("SSH", p.SSHSettings.SSHPublicAccess)
		if p.SSHSettings.SSHPort != 0 {
			row("SSH command", sshCommand(ci))
		}
	}
	if lo := p.LastOperation; lo != nil {
		row("Last operation", fmt.Sprintf("%s %s (%s, %s)", lo.OperationName, lo.OperationStatus, lo.OperationTrigger, lo.OperationTime.Local().Format(time.DateTime)))
	}
	for _, e := range p.Errors {
		row("Error", e.Code+": "+e.Message)
	}
	row("ID", ci.ID)
	return w.Flush()
}

// sshCommand is the ready `ssh` line of an instance with SSH enabled.
func sshCommand(ci *client.Compute) string {
	p := ci.Properties.Properties
	host := "SERVER-HOST"
	if ce := p.ConnectivityEndpoints; ce != nil && ce.PublicIPAddress != nil && *ce.PublicIPAddress != "" {
		host = *ce.PublicIPAddress
	}
	user := p.SSHSettings.AdminUserName
	if user == "" {
		user = "azureuser"
	}
	return fmt.Sprintf("ssh -p %d %s@%s", p.SSHSettings.SSHPort, user, host)
}

func listCmd(g *globals) *cobra.Command {
	var mine bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the compute instances of a workspace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(g); err != nil {
				return err
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			cs, err := c.ListComputes(cmd.Context(), s.Workspace)
			if err != nil {
				return err
			}
			if mine {
				me, err := c.Me(cmd.Context())
				if err != nil {
					return err
				}
				cs = onlyMine(cs, me.ObjectID)
			}
			if g.json() {
				if cs == nil {
					cs = []client.Compute{}
				}
				return g.printJSON(cs)
			}
			if len(cs) == 0 {
				fmt.Fprintf(g.stdout, "No compute instances in workspace %s. Create one with: chub computetarget create computeinstance -n NAME -s STANDARD_DS3_V2\n", s.Workspace)
				return nil
			}
			w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSTATE\tVM SIZE\tCREATED BY\tCREATED")
			for _, ci := range cs {
				by, created := "", ""
				if ci.Properties.Properties.CreatedBy != nil {
					by = ci.Properties.Properties.CreatedBy.UserName
				}
				if ci.Properties.CreatedOn != nil {
					created = ci.Properties.CreatedOn.Local().Format(time.DateTime)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", ci.Name, ci.Properties.Properties.State, ci.Properties.Properties.VMSize, by, created)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&mine, "mine", false, "only the instances created by me or assigned to me")
	addScopeFlags(cmd, g)
	return cmd
}

// onlyMine keeps the instances a user created or was assigned.
func onlyMine(cs []client.Compute, me string) []client.Compute {
	var out []client.Compute
	for _, ci := range cs {
		p := ci.Properties.Properties
		created := p.CreatedBy != nil && p.CreatedBy.UserID == me
		assigned := p.PersonalComputeInstanceSettings != nil && p.PersonalComputeInstanceSettings.AssignedUser != nil && p.PersonalComputeInstanceSettings.AssignedUser.ObjectID == me
		if created || assigned {
			out = append(out, ci)
		}
	}
	return out
}

func execCmd(g *globals) *cobra.Command {
	var name, user, workdir string
	var tty, interactive bool
	var env []string
	cmd := &cobra.Command{
		Use:   "exec -n NAME -- COMMAND [ARGS...]",
		Short: "Run a command inside a running compute instance and exit with its exit code",
		Example: `  chub computetarget computeinstance exec -n instance -- uname -a
  echo hi | chub computetarget computeinstance exec -n instance -- cat`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" || len(args) == 0 {
				return fmt.Errorf("usage: chub computetarget computeinstance exec -n NAME -- COMMAND [ARGS...]")
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			o := client.ExecOptions{Command: args, Env: env, TTY: tty, User: user, WorkDir: workdir, Stdout: g.stdout, Stderr: g.stderr}
			stdinIsTerm := term.IsTerminal(int(os.Stdin.Fd()))
			if interactive || !stdinIsTerm {
				o.Stdin = os.Stdin
			}
			if tty && stdinIsTerm {
				if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
					o.Cols, o.Rows = uint16(w), uint16(h)
				}
				old, err := term.MakeRaw(int(os.Stdin.Fd()))
				if err == nil {
					defer term.Restore(int(os.Stdin.Fd()), old)
				}
			}
			code, err := c.Exec(cmd.Context(), s.Workspace, name, o)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&name, "name", "n", "", "name of the compute instance")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a terminal")
	f.BoolVarP(&interactive, "interactive", "i", false, "forward stdin even when it is a terminal")
	f.StringVarP(&user, "user", "u", "", "user to run as (default azureuser)")
	f.StringVar(&workdir, "workdir", "", "working directory (default the user's home)")
	f.StringArrayVarP(&env, "env", "e", nil, "environment variable NAME=VALUE (repeatable)")
	addScopeFlags(cmd, g)
	return cmd
}
