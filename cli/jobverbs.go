package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// jobNameFlag adds the -n flag of the verbs on one job.
func jobNameFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVarP(name, "name", "n", "", "job name")
}

func needName(name, verb string) error {
	if name == "" {
		return fmt.Errorf("--name/-n is required: chub job %s -n JOB (see chub job list)", verb)
	}
	return nil
}

func jobStreamCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "stream -n NAME",
		Short: "Follow a job's log (stdout and stderr) until the job ends, and exit with its result",
		Long:  "Print the job's log as it is written, from its start, until the job ends; then a final line\nwith its status and times (on stderr).\n\n" + jobExitCodes,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needName(name, "stream"); err != nil {
				return err
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			return g.followJob(cmd.Context(), c, s.Workspace, name)
		},
	}
	jobNameFlag(cmd, &name)
	addScopeFlags(cmd, g)
	return cmd
}

// followJob prints a job's std_log until the job has ended and all of it
// was printed, reconnecting when a stream breaks, then returns the job's
// result as an exitError (nil when it Completed).
func (g *globals) followJob(ctx context.Context, c *client.Client, ws, name string) error {
	start := time.Now()
	j, err := c.GetJob(ctx, ws, name)
	if err != nil {
		return err
	}
	if !j.Properties.Status.Terminal() {
		g.progressf("Job %s is %s%s. Following its log (Ctrl-C stops following; the job goes on)...\n", name, j.Properties.Status, messageSuffix(j))
	}
	var offset int64
	failures := 0
	last := j.Properties.Status
	for {
		follow := !j.Properties.Status.Terminal()
		rc, err := c.StreamJobLogs(ctx, ws, name, client.StdLog, offset, follow)
		if err == nil {
			var n int64
			n, err = io.Copy(g.stdout, rc)
			rc.Close()
			offset += n
			if n > 0 {
				failures = 0
			}
		}
		if ctx.Err() != nil {
			return g.interrupted(name)
		}
		if err != nil {
			var ce *client.Error
			if errors.As(err, &ce) && ce.StatusCode < 500 && ce.StatusCode != http.StatusTooManyRequests {
				return err
			}
			if failures++; failures > 30 {
				return fmt.Errorf("following the log of job %s: %w (gave up after %d tries; run chub job stream -n %s again)", name, err, failures, name)
			}
			g.progressf("The log stream broke (%v); reconnecting...\n", describe(err))
			select {
			case <-ctx.Done():
				return g.interrupted(name)
			case <-time.After(time.Second):
			}
			continue
		}
		if !follow {
			break // the job had ended before this read: everything is printed
		}
		if j, err = c.GetJob(ctx, ws, name); err != nil {
			if ctx.Err() != nil {
				return g.interrupted(name)
			}
			return err
		}
		if st := j.Properties.Status; st != last && !st.Terminal() {
			g.progressf("  %6.1fs  %s%s\n", time.Since(start).Seconds(), st, messageSuffix(j))
			last = st
		}
		if !j.Properties.Status.Terminal() {
			// The stream ended before the job (it waits to start, or a
			// proxy or the server cut it): come back shortly.
			select {
			case <-ctx.Done():
				return g.interrupted(name)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	fmt.Fprintln(g.stderr, jobSummary(j))
	if code := jobExitCode(j); code != 0 {
		return exitError{code: code}
	}
	return nil
}

func (g *globals) interrupted(name string) error {
	fmt.Fprintf(g.stderr, "\nStopped following job %s; it goes on (chub job stream -n %s%s follows it again, chub job cancel -n %s%s cancels it).\n", name, name, g.scopeHint(), name, g.scopeHint())
	return exitError{code: 130}
}

func messageSuffix(j *client.Job) string {
	if m := j.Properties.StatusMessage; m != "" {
		return " (" + m + ")"
	}
	return ""
}

// jobExitCode is chub job stream's exit status for an ended job: 0
// Completed, the command's exit code when it Failed by exiting so (1 when
// it failed otherwise, e.g. a timeout, or the code is out of range), 130
// Canceled.
func jobExitCode(j *client.Job) int {
	switch j.Properties.Status {
	case chub.JobCompleted:
		return 0
	case chub.JobCanceled:
		return 130
	}
	if er := j.Properties.Error; er != nil && er.Code != "JobFailed" {
		return 1 // ended by something else than its own exit: timeout, instance stopped, ...
	}
	if e := j.Properties.ExitCode; e != nil && *e > 0 && *e < 256 {
		return *e
	}
	return 1
}

// jobSummary is the final line of a followed job.
func jobSummary(j *client.Job) string {
	p := j.Properties
	var b strings.Builder
	fmt.Fprintf(&b, "Job %s %s", j.Name, p.Status)
	if p.ExitCode != nil {
		fmt.Fprintf(&b, " (exit code %d)", *p.ExitCode)
	}
	if p.StartTime != nil && p.EndTime != nil {
		fmt.Fprintf(&b, " after running %s", humanDuration(p.EndTime.Sub(*p.StartTime)))
	}
	if created := jobCreated(j); created != nil && p.EndTime != nil {
		fmt.Fprintf(&b, ", %s since it was submitted", humanDuration(p.EndTime.Sub(*created)))
	}
	if p.Error != nil && p.Status != chub.JobCompleted {
		fmt.Fprintf(&b, ": %s (%s)", p.Error.Message, p.Error.Code)
	} else if p.StatusMessage != "" && p.Status != chub.JobCompleted {
		fmt.Fprintf(&b, ": %s", p.StatusMessage)
	}
	b.WriteString(".")
	return b.String()
}

func jobCreated(j *client.Job) *time.Time {
	if j.SystemData != nil {
		return j.SystemData.CreatedAt
	}
	return nil
}

// humanDuration writes d briefly: 12.3s, 4m05s, 2h03m, 3d04h.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// jobDuration is how long a job ran (so far); "" before it started.
func jobDuration(j *client.Job, now time.Time) string {
	p := j.Properties
	if p.StartTime == nil {
		return ""
	}
	end := now
	if p.EndTime != nil {
		end = *p.EndTime
	}
	return humanDuration(end.Sub(*p.StartTime))
}

func jobListCmd(g *globals) *cobra.Command {
	var compute, tag string
	var all, archived bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a workspace's jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(g); err != nil {
				return err
			}
			if all && archived {
				return fmt.Errorf("--all already includes the archived jobs; give one of --all and --archived")
			}
			o := client.ListJobsOptions{Tag: tag, Compute: strings.TrimPrefix(compute, "azureml:")}
			switch {
			case all:
				o.View = chub.JobViewAll
			case archived:
				o.View = chub.JobViewArchived
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			js, err := c.ListJobs(cmd.Context(), s.Workspace, o)
			if err != nil {
				return err
			}
			if g.json() {
				if js == nil {
					js = []client.Job{}
				}
				return g.printJSON(js)
			}
			if len(js) == 0 {
				fmt.Fprintf(g.stdout, "No jobs in workspace %s%s. Submit one with: chub job create --compute INSTANCE -- COMMAND\n", s.Workspace, map[bool]string{true: " matching the filters", false: ""}[compute != "" || tag != "" || archived])
				return nil
			}
			return writeJobTable(g.stdout, js, time.Now())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&compute, "compute", "c", "", "only the jobs of this compute instance")
	f.StringVar(&tag, "tag", "", "only the jobs with this tag (NAME or NAME=VALUE)")
	f.BoolVar(&all, "all", false, "archived jobs too")
	f.BoolVar(&archived, "archived", false, "only archived jobs")
	addScopeFlags(cmd, g)
	return cmd
}

// writeJobTable writes jobs as a table that fits 100 columns.
func writeJobTable(w io.Writer, js []client.Job, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tCOMPUTE\tDISPLAY NAME\tCREATED\tDURATION")
	for i := range js {
		j := &js[i]
		created := ""
		if t := jobCreated(j); t != nil {
			created = t.Local().Format("Jan 02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clip(j.Name, 25), j.Properties.Status, clip(lastSegment(j.Properties.ComputeID), 16),
			clip(oneLine(displayName(j)), 14), created, jobDuration(j, now))
	}
	return tw.Flush()
}

// displayName is a job's display name, "" when it is only its name
// (the server's default).
func displayName(j *client.Job) string {
	if j.Properties.DisplayName == j.Name {
		return ""
	}
	return j.Properties.DisplayName
}

// clip shortens s to n runes, ending with … when cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func jobShowCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "show -n NAME",
		Short: "Show a job: status, command, references, times, exit code and error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(g); err != nil {
				return err
			}
			if err := needName(name, "show"); err != nil {
				return err
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			j, err := c.GetJob(cmd.Context(), s.Workspace, name)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(j)
			}
			return writeJob(g.stdout, j, time.Now())
		},
	}
	jobNameFlag(cmd, &name)
	addScopeFlags(cmd, g)
	return cmd
}

// writeJob writes one job as labeled rows.
func writeJob(w io.Writer, j *client.Job, now time.Time) error {
	p := j.Properties
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("Name", j.Name)
	row("Display name", p.DisplayName)
	st := string(p.Status)
	if p.IsArchived {
		st += " (archived)"
	}
	row("Status", st)
	row("Message", p.StatusMessage)
	if p.QueuePosition != nil {
		row("Queue position", fmt.Sprint(*p.QueuePosition))
	}
	row("Compute", lastSegment(p.ComputeID))
	row("Command", p.Command)
	row("Code", p.CodeID)
	row("Environment", p.EnvironmentID)
	row("Experiment", p.ExperimentName)
	row("Inputs", joinMap(p.Inputs, func(in client.JobInput) string { return in.Value }))
	row("Outputs", joinKeys(p.Outputs))
	row("Environment vars", joinMap(p.EnvironmentVariables, func(s string) string { return s }))
	if p.Limits != nil {
		row("Timeout", p.Limits.Timeout)
	}
	if sd := j.SystemData; sd != nil {
		created := ""
		if sd.CreatedAt != nil {
			created = sd.CreatedAt.Local().Format(time.DateTime)
		}
		if sd.CreatedBy != "" {
			created += " by " + sd.CreatedBy
		}
		row("Created", strings.TrimSpace(created))
	}
	if p.StartTime != nil {
		row("Started", p.StartTime.Local().Format(time.DateTime))
	}
	if p.EndTime != nil {
		row("Ended", p.EndTime.Local().Format(time.DateTime))
	}
	row("Duration", jobDuration(j, now))
	if p.ExitCode != nil {
		row("Exit code", fmt.Sprint(*p.ExitCode))
	}
	if p.Error != nil {
		row("Error", p.Error.Message+" ("+p.Error.Code+")")
	}
	row("Description", p.Description)
	row("Tags", joinMap(p.Tags, func(s string) string { return s }))
	row("Studio", j.StudioURL())
	row("ID", j.ID)
	return tw.Flush()
}

func joinMap[V any](m map[string]V, val func(V) string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + val(m[k])
	}
	return strings.Join(parts, ", ")
}

func joinKeys[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func jobCancelCmd(g *globals) *cobra.Command {
	var name string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "cancel -n NAME",
		Short: "Cancel a job (its whole process tree ends) and wait until it has",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(g); err != nil {
				return err
			}
			if err := needName(name, "cancel"); err != nil {
				return err
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			j, err := c.GetJob(ctx, s.Workspace, name)
			if err != nil {
				return err
			}
			if j.Properties.Status.Terminal() {
				g.progressf("Job %s has already ended (%s); nothing to cancel.\n", name, j.Properties.Status)
				if g.json() {
					return g.printJSON(j)
				}
				return nil
			}
			if err := c.CancelJob(ctx, s.Workspace, name); err != nil {
				return err
			}
			if noWait {
				g.progressf("Cancel of job %s requested; follow it with: chub job show -n %s%s\n", name, name, g.scopeHint())
				if g.json() {
					return g.printJSON(map[string]string{"name": name, "status": string(chub.JobCancelRequested)})
				}
				return nil
			}
			g.progressf("Canceling job %s...\n", name)
			start := time.Now()
			j, err = c.WaitJob(ctx, s.Workspace, name, nil, func(j *client.Job, elapsed time.Duration) {
				g.progressf("  %6.1fs  %s\n", elapsed.Seconds(), j.Properties.Status)
			})
			if err != nil {
				return fmt.Errorf("wait for job %s to end: %w", name, err)
			}
			if j.Properties.Status == chub.JobCanceled {
				g.progressf("Succeeded: job %s is Canceled (%.1fs).\n", name, time.Since(start).Seconds())
			} else {
				g.progressf("Job %s ended %s before the cancel took effect.\n", name, j.Properties.Status)
			}
			if g.json() {
				return g.printJSON(j)
			}
			return nil
		},
	}
	jobNameFlag(cmd, &name)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the cancel is requested")
	addScopeFlags(cmd, g)
	return cmd
}

func jobArchiveCmd(g *globals) *cobra.Command {
	var name string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "archive -n NAME",
		Short: "Archive a job (canceling it first when it is active): it then shows only in list --archived/--all",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(g); err != nil {
				return err
			}
			if err := needName(name, "archive"); err != nil {
				return err
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := c.ArchiveJob(ctx, s.Workspace, name); err != nil {
				return err
			}
			if noWait {
				g.progressf("Archive of job %s requested.\n", name)
				return nil
			}
			start := time.Now()
			j, err := c.WaitJob(ctx, s.Workspace, name, func(j *client.Job) bool { return j.Properties.IsArchived }, func(j *client.Job, elapsed time.Duration) {
				if !j.Properties.IsArchived {
					g.progressf("  %6.1fs  %s\n", elapsed.Seconds(), j.Properties.Status)
				}
			})
			if err != nil {
				return fmt.Errorf("wait for job %s to be archived: %w", name, err)
			}
			g.progressf("Archived job %s (%s, %.1fs); chub job list --archived shows it.\n", name, j.Properties.Status, time.Since(start).Seconds())
			if g.json() {
				return g.printJSON(j)
			}
			return nil
		},
	}
	jobNameFlag(cmd, &name)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the archive is requested")
	addScopeFlags(cmd, g)
	return cmd
}

func jobDownloadCmd(g *globals) *cobra.Command {
	var name, outputName, dir string
	cmd := &cobra.Command{
		Use:   "download -n NAME",
		Short: "Download an ended job's outputs into DIR/NAME/outputs/...",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(g); err != nil {
				return err
			}
			if err := needName(name, "download"); err != nil {
				return err
			}
			if !chub.JobNamePattern.MatchString(name) {
				return fmt.Errorf("job name %q is not a job name (letters, digits, - and _)", name)
			}
			dest := filepath.Join(dir, name)
			if _, err := os.Lstat(dest); err == nil {
				return fmt.Errorf("%s already exists; remove it or choose another --download-path", dest)
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			rc, err := c.DownloadJobOutputs(cmd.Context(), s.Workspace, name, outputName)
			if err != nil {
				return err
			}
			defer rc.Close()
			start := time.Now()
			st, err := extractTarGz(rc, dest)
			for _, sk := range st.Skipped {
				g.progressf("Left out: %s\n", sk)
			}
			if err != nil {
				if st.Files+st.Dirs+st.Links > 0 {
					return fmt.Errorf("%w (%s holds what was written before)", err, dest)
				}
				return err
			}
			if g.json() {
				return g.printJSON(map[string]any{"name": name, "path": dest, "files": st.Files, "bytes": st.Bytes})
			}
			if st.Files == 0 {
				fmt.Fprintf(g.stdout, "Job %s has no output files%s; %s is empty.\n", name, map[bool]string{true: " in " + outputName, false: ""}[outputName != ""], dest)
				return nil
			}
			fmt.Fprintf(g.stdout, "Downloaded %d file%s (%s) of job %s to %s (%.1fs).\n", st.Files, map[bool]string{true: "", false: "s"}[st.Files == 1], humanBytes(st.Bytes), name, dest, time.Since(start).Seconds())
			return nil
		},
	}
	jobNameFlag(cmd, &name)
	cmd.Flags().StringVar(&outputName, "output-name", "", "only this named output (outputs/NAME/)")
	cmd.Flags().StringVarP(&dir, "download-path", "p", ".", "folder to download into (the job's files go to DIR/NAME/)")
	addScopeFlags(cmd, g)
	return cmd
}
