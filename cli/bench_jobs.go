package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/computehub/chub/bench"
)

// benchJobsCmd is `chub bench jobs`: job start latency, throughput on one
// instance's slots and the memory a running job costs.
func benchJobsCmd(g *globals) *cobra.Command {
	var o bench.JobsOptions
	var outFile string
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Measure job submit→Running latency, throughput over an instance's slots and a job's memory against the configured server (run on its host)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := g.connect()
			if err != nil {
				return err
			}
			r, err := bench.RunJobs(cmd.Context(), c, o, g.stderr)
			if err != nil {
				return err
			}
			md := r.Markdown()
			fmt.Fprintln(g.stdout, md)
			if outFile == "" {
				return nil
			}
			// Appended: the jobs figures follow the file's other sections.
			old, err := os.ReadFile(outFile)
			if err != nil && !os.IsNotExist(err) {
				return err
			}
			text := strings.TrimRight(string(old), "\n")
			if text != "" {
				text += "\n\n"
			}
			return os.WriteFile(outFile, []byte(text+md), 0o644)
		},
	}
	cmd.Flags().StringVar(&o.VMSize, "vm-size", "Standard_DS3_v2", "VM size of the instance (its vCPUs are its job slots)")
	cmd.Flags().IntVar(&o.Latency, "latency-samples", 40, "how many jobs to time from submit to Running, one at a time")
	cmd.Flags().IntVar(&o.Jobs, "jobs", 100, "how many short jobs the throughput run submits at once")
	cmd.Flags().Float64Var(&o.JobSeconds, "job-seconds", 1, "how long each throughput job sleeps")
	cmd.Flags().DurationVar(&o.Poll, "poll", 5*time.Millisecond, "how often a job is polled while its start is timed")
	cmd.Flags().DurationVar(&o.Sample, "sample", 100*time.Millisecond, "how often the job list is sampled during the throughput run")
	cmd.Flags().StringVar(&outFile, "output-file", "", "also append the results to this markdown file (e.g. BENCHMARKS.md)")
	return cmd
}
