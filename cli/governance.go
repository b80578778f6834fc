package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

func roleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "role", Short: "Role-based access control: role definitions and assignments (Azure's shapes)"}
	def := &cobra.Command{Use: "definition", Short: "Role definitions"}
	var scope string
	defList := &cobra.Command{
		Use: "list", Short: "List built-in and custom roles", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			roles, err := c.RoleDefinitions(cmd.Context(), scope)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(roles)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tTYPE\tID")
			for _, r := range roles {
				fmt.Fprintf(w, "%s\t%s\t%s\n", r.Properties.RoleName, r.Properties.Type, r.Name)
			}
			return w.Flush()
		},
	}
	defList.Flags().StringVar(&scope, "scope", "/", "scope")
	var file string
	defCreate := &cobra.Command{
		Use: "create --role-definition FILE", Short: "Create a custom role from a JSON file in Azure CLI's shape", Args: cobra.NoArgs,
		Example: `  {"Name": "Instance Starter", "IsCustom": true, "Description": "Starts and stops instances",
   "Actions": ["Microsoft.MachineLearningServices/workspaces/computes/read",
               "Microsoft.MachineLearningServices/workspaces/computes/start/action",
               "Microsoft.MachineLearningServices/workspaces/computes/stop/action"],
   "NotActions": [], "AssignableScopes": ["/subscriptions/00000000-0000-0000-0000-000000000000"]}`,
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var r chub.RoleDefinition
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("%s is not a role definition: %w", file, err)
			}
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			out, err := c.PutRoleDefinition(cmd.Context(), r)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(out)
			}
			fmt.Fprintf(g.stdout, "Created role %q (id %s).\n", out.Properties.RoleName, out.Name)
			return nil
		},
	}
	defCreate.Flags().StringVar(&file, "role-definition", "", "JSON file with Name, Description, Actions, NotActions, AssignableScopes")
	defDelete := &cobra.Command{
		Use: "delete --name NAME|ID", Short: "Delete a custom role", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			return c.DeleteRoleDefinition(cmd.Context(), file)
		},
	}
	defDelete.Flags().StringVar(&file, "name", "", "role name or id")
	def.AddCommand(defList, defCreate, defDelete)

	asg := &cobra.Command{Use: "assignment", Short: "Role assignments"}
	var assignee, role, aScope, ids string
	resolve := func(cmd *cobra.Command, c *client.Client) (string, error) {
		if assignee == "" {
			return "", nil
		}
		users, err := c.ListUsers(cmd.Context())
		if err != nil {
			return "", err
		}
		for _, u := range users {
			if strings.EqualFold(u.Name, assignee) || strings.EqualFold(u.ObjectID, assignee) {
				return u.ObjectID, nil
			}
		}
		return "", fmt.Errorf("no user %q (chub user list)", assignee)
	}
	create := &cobra.Command{
		Use: "create --assignee USER --role ROLE --scope SCOPE", Short: "Assign a role to a user at a scope", Args: cobra.NoArgs,
		Example: `  chub role assignment create --assignee alice --role "AzureML Data Scientist" \
    --scope /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/default`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if assignee == "" || role == "" || aScope == "" {
				return fmt.Errorf("--assignee, --role and --scope are required")
			}
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			pid, err := resolve(cmd, c)
			if err != nil {
				return err
			}
			a, err := c.AssignRole(cmd.Context(), pid, role, aScope)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(a)
			}
			fmt.Fprintf(g.stdout, "Assigned %q to %s at %s (assignment %s).\n", role, assignee, aScope, a.Name)
			return nil
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List role assignments", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			pid, err := resolve(cmd, c)
			if err != nil {
				return err
			}
			as, err := c.RoleAssignments(cmd.Context(), aScope, pid)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(as)
			}
			roles, _ := c.RoleDefinitions(cmd.Context(), "/")
			names := map[string]string{}
			for _, r := range roles {
				names[strings.ToLower(r.Name)] = r.Properties.RoleName
			}
			users, _ := c.ListUsers(cmd.Context())
			unames := map[string]string{}
			for _, u := range users {
				unames[u.ObjectID] = u.Name
			}
			w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "PRINCIPAL\tROLE\tSCOPE\tID")
			for _, a := range as {
				rid := strings.ToLower(a.Properties.RoleDefinitionID[strings.LastIndex(a.Properties.RoleDefinitionID, "/")+1:])
				who := unames[a.Properties.PrincipalID]
				if who == "" {
					who = a.Properties.PrincipalID
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", who, names[rid], a.Properties.Scope, a.Name)
			}
			return w.Flush()
		},
	}
	del := &cobra.Command{
		Use: "delete (--ids ID | --assignee USER --role ROLE --scope SCOPE)", Short: "Delete role assignments", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			if ids != "" {
				return c.DeleteRoleAssignment(cmd.Context(), aScope, ids)
			}
			pid, err := resolve(cmd, c)
			if err != nil || pid == "" {
				return fmt.Errorf("give --ids, or --assignee with --role and --scope: %v", err)
			}
			as, err := c.RoleAssignments(cmd.Context(), aScope, pid)
			if err != nil {
				return err
			}
			roles, err := c.RoleDefinitions(cmd.Context(), "/")
			if err != nil {
				return err
			}
			n := 0
			for _, a := range as {
				rid := a.Properties.RoleDefinitionID[strings.LastIndex(a.Properties.RoleDefinitionID, "/")+1:]
				match := role == ""
				for _, r := range roles {
					if strings.EqualFold(r.Name, rid) && (strings.EqualFold(r.Properties.RoleName, role) || strings.EqualFold(r.Name, role)) {
						match = true
					}
				}
				if match && strings.EqualFold(strings.TrimRight(a.Properties.Scope, "/"), strings.TrimRight(aScope, "/")) {
					if err := c.DeleteRoleAssignment(cmd.Context(), aScope, a.Name); err != nil {
						return err
					}
					n++
				}
			}
			fmt.Fprintf(g.stdout, "Deleted %d role assignment(s).\n", n)
			return nil
		},
	}
	for _, c := range []*cobra.Command{create, list, del} {
		c.Flags().StringVar(&assignee, "assignee", "", "user name or object id")
		c.Flags().StringVar(&role, "role", "", "role name (e.g. \"AzureML Data Scientist\") or id")
		c.Flags().StringVar(&aScope, "scope", "/", "scope: /, /subscriptions/ID, .../resourceGroups/RG, a workspace or a compute id")
	}
	del.Flags().StringVar(&ids, "ids", "", "assignment id")
	asg.AddCommand(create, list, del)
	cmd.AddCommand(def, asg)
	return cmd
}

func quotaCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "quota", Short: "Dedicated-core quotas per VM family and region"}
	list := &cobra.Command{
		Use: "list", Short: "List limits and usage", Args: cobra.NoArgs,
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
			fmt.Fprintln(w, "FAMILY\tUSED\tLIMIT")
			for _, u := range us {
				name := u.Name.Value
				if strings.HasSuffix(u.Type, "totalCores/usages") {
					name = "totalCores"
				}
				fmt.Fprintf(w, "%s\t%d\t%d\n", name, u.CurrentValue, u.Limit)
			}
			return w.Flush()
		},
	}
	var family string
	var limit int64
	set := &cobra.Command{
		Use: "set --family FAMILY --limit N", Short: "Set the dedicated-core limit of a VM family (or totalCores for the region)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if family == "" || !cmd.Flags().Changed("limit") {
				return fmt.Errorf("--family and --limit are required (families: chub vmsize list; totalCores for the region)")
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			if err := c.SetQuota(cmd.Context(), s.Location, family, limit); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Quota of %s in %s set to %d cores.\n", family, s.Location, limit)
			return nil
		},
	}
	set.Flags().StringVar(&family, "family", "", "VM family, e.g. standardDSv2Family, or totalCores")
	set.Flags().Int64Var(&limit, "limit", 0, "dedicated cores")
	cmd.AddCommand(list, set)
	return cmd
}

func auditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The audit log: every change, refusal, sign-in and access"}
	var since, principal, resource string
	var top int
	list := &cobra.Command{
		Use: "list", Short: "List audit entries, newest first", Args: cobra.NoArgs,
		Example: `  chub audit list --since 1h --principal alice
  chub audit list --resource /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			es, err := c.Audit(cmd.Context(), since, principal, resource, top)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(es)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "TIME\tPRINCIPAL\tACTION\tRESULT\tRESOURCE\tCLIENT")
			for _, e := range es {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s (%d)\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.PrincipalName, e.Action, e.Result, e.Status, e.Resource, e.ClientAddress)
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&since, "since", "", "a time (RFC 3339) or a duration such as 1h")
	list.Flags().StringVar(&principal, "principal", "", "user name or object id")
	list.Flags().StringVar(&resource, "resource", "", "resource id prefix")
	list.Flags().IntVar(&top, "top", 100, "at most this many entries")
	cmd.AddCommand(list)
	return cmd
}
