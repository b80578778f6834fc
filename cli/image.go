package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/computehub/chub/runtime/local"
	"github.com/computehub/chub/server"
)

// imageCmd manages the local runtime's images on the server's host.
func imageCmd(g *globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{Use: "image", Short: "Manage instance images of the local runtime (run on the server's host, as root)"}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", envOr("CHUB_DATA_DIR", "./data"), "the server's data directory")
	imp := &cobra.Command{
		Use:   "import NAME PATH",
		Short: "Import an OCI image layout (directory or tarball) as image NAME",
		Example: `  chub image import ubuntu ./ubuntu-oci.tar
  chub computetarget create computeinstance -n dev1 -s Standard_DS1_v2 --image ubuntu`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := local.ImportImage(server.LocalRuntimeRoot(dataDir), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Imported image %s; create instances from it with --image %s\n", args[0], args[0])
			return nil
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List images", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			imgs, err := local.ListImages(server.LocalRuntimeRoot(dataDir))
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(imgs)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tLAYERS")
			for _, im := range imgs {
				layers := "snapshot of this host"
				if im.Name != local.HostImage {
					layers = fmt.Sprintf("%d: %s", len(im.Layers), strings.Join(shortDigests(im.Layers), " "))
				}
				fmt.Fprintf(w, "%s\t%s\n", im.Name, layers)
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(imp, list)
	return cmd
}

func shortDigests(ds []string) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		d = strings.TrimPrefix(d, "sha256:")
		if len(d) > 12 {
			d = d[:12]
		}
		out[i] = d
	}
	return out
}
