package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/computehub/chub/bench"
)

func benchCmd(g *globals) *cobra.Command {
	var o bench.Options
	var outFile string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure instance lifecycle latency, API latency and idle memory against the configured server (run on its host)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			r, err := bench.Run(cmd.Context(), c, o, g.stderr)
			if err != nil {
				return err
			}
			md := r.Markdown()
			fmt.Fprintln(g.stdout, md)
			if outFile == "" {
				return nil
			}
			old, _ := os.ReadFile(outFile)
			text := string(old)
			if !strings.HasPrefix(text, "# Benchmarks") {
				text = "# Benchmarks\n\nFigures written by `make bench` (`chub bench`); newest first.\n\n" + text
			}
			head, rest, _ := strings.Cut(text, "\n\n## ")
			if rest != "" {
				rest = "## " + rest
			}
			if i := strings.Index(head, "## "); i >= 0 { // a file whose sections follow the title directly
				head, rest = head[:i], head[i:]+rest
			}
			return os.WriteFile(outFile, []byte(strings.TrimRight(head, "\n")+"\n\n"+md+"\n"+rest), 0o644)
		},
	}
	cmd.Flags().IntVar(&o.Instances, "instances", 20, "how many instances")
	cmd.Flags().StringVar(&o.VMSize, "vm-size", "Standard_DS1_v2", "VM size of the instances")
	cmd.Flags().IntVar(&o.Gets, "gets", 2000, "how many GETs to time")
	cmd.Flags().DurationVar(&o.Poll, "poll", 2*time.Millisecond, "how often the state is polled while timing")
	cmd.Flags().StringVar(&outFile, "output-file", "", "also add the results to this markdown file (e.g. BENCHMARKS.md)")
	cmd.AddCommand(benchJobsCmd(g))
	return cmd
}
