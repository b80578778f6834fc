package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

func jobCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Submit command jobs to compute instances and follow them (az ml job's shapes)",
		Long: `A job runs a command on a compute instance, in the instance's own software, as its user, in a
folder holding the job's code and outputs/. Each instance runs one job per vCPU at a time (see
--max-concurrent-jobs on computetarget create); the rest wait Queued in submission order.`,
	}
	cmd.AddCommand(jobCreateCmd(g), jobListCmd(g), jobShowCmd(g), jobStreamCmd(g), jobCancelCmd(g), jobDownloadCmd(g), jobArchiveCmd(g))
	return cmd
}

const jobExitCodes = `Exit status: 0 when the job Completed; the job's own exit code when it Failed with one
(1 when it failed without one: timeout, instance stopped, ...); 130 when it was Canceled
(or when you interrupt the following: the job goes on).`

func jobCreateCmd(g *globals) *cobra.Command {
	var file, name, compute, code, timeout, display, experiment, environment, description, command string
	var sets, env, inputs, outputs, tags []string
	var stream bool
	cmd := &cobra.Command{
		Use:   "create (--file job.yml | --compute NAME [flags] -- COMMAND [ARGS...])",
		Short: "Submit a command job",
		Long: `Submit a command job, described by an az ml v2 YAML file (--file) or by flags and the command
after --. The words after -- are the command, each quoted for bash when needed; write
${{inputs.NAME}} and ${{outputs.NAME}} in it. A --code folder (or the YAML's code:) is uploaded once
(the same content is not uploaded again), leaving out .git and what its .amlignore (else .gitignore)
lists. With --stream the job's log is followed to its end.

YAML fields: type: command, name, display_name, experiment_name, description, tags, properties,
command, code (a local path from the YAML's folder, or azureml:NAME:VERSION), environment
(azureml:NAME:VERSION, azureml:NAME@latest or {image: IMAGE}), compute (azureml:NAME), inputs (literal
values), outputs ({type: uri_folder}), environment_variables, limits: {timeout: SECONDS}. Any other
field is refused, naming it.

With --stream: ` + jobExitCodes,
		Example: `  chub job create --compute ci1 -- echo hello
  chub job create --compute ci1 --code ./src --input lr=0.1 --output-name model --stream -- python train.py --lr '${{inputs.lr}}' --out '${{outputs.model}}'
  chub job create --file job.yml --set inputs.lr=0.2 --stream`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(g); err != nil {
				return err
			}
			if len(args) > 0 && cmd.ArgsLenAtDash() != 0 {
				return fmt.Errorf("put the job's command after --, e.g. chub job create --compute ci1 -- python train.py --lr 0.1")
			}
			var d *jobDraft
			if file != "" {
				for _, f := range []string{"compute", "code", "env", "input", "output-name", "timeout", "display-name", "experiment-name", "environment", "description", "tag", "command"} {
					if cmd.Flags().Changed(f) {
						return fmt.Errorf("--%s does not go with --file: change the YAML's fields with --set (e.g. --set compute=azureml:ci1 --set inputs.lr=0.2)", f)
					}
				}
				if len(args) > 0 {
					return fmt.Errorf("the command comes from %s: drop the words after -- (or --set command=...)", file)
				}
				data, err := os.ReadFile(file)
				if err != nil {
					return fmt.Errorf("read the job file: %w", err)
				}
				abs, err := filepath.Abs(file)
				if err != nil {
					return err
				}
				if d, err = parseJobYAML(data, filepath.Dir(abs), sets); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			} else {
				if len(sets) > 0 {
					return fmt.Errorf("--set changes a --file job's fields; without --file use the flags (--env, --input, --display-name, ...)")
				}
				var err error
				if d, err = draftFromFlags(compute, code, command, args, env, inputs, outputs, tags, timeout); err != nil {
					return err
				}
				d.DisplayName, d.ExperimentName, d.Description, d.Environment = display, experiment, description, environment
				if environment != "" && !strings.HasPrefix(environment, "azureml:") {
					return fmt.Errorf("--environment %q: give azureml:NAME:VERSION or azureml:NAME@latest", environment)
				}
			}
			if name != "" {
				d.Name = name
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			j, err := g.submitJob(cmd.Context(), c, s.Workspace, d, stream)
			if err != nil {
				return err
			}
			if stream {
				return g.followJob(cmd.Context(), c, s.Workspace, j.Name)
			}
			if g.json() {
				return g.printJSON(j)
			}
			fmt.Fprintf(g.stdout, "Job %s submitted to %s: %s.\n", j.Name, lastSegment(j.Properties.ComputeID), j.Properties.Status)
			if u := j.StudioURL(); u != "" {
				fmt.Fprintf(g.stdout, "Studio: %s\n", u)
			}
			fmt.Fprintf(g.stdout, "Follow it: chub job stream -n %s%s\n", j.Name, g.scopeHint())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "az ml v2 YAML of a command job")
	f.StringVarP(&name, "name", "n", "", "job name (default: a new random one, e.g. calm_pasta_1a2b3c4d)")
	f.StringArrayVar(&sets, "set", nil, "with --file: set a field, key=value (dotted keys, e.g. inputs.lr=0.2; repeatable)")
	f.StringVarP(&compute, "compute", "c", "", "compute instance to run on")
	f.StringVar(&code, "code", "", "local folder (or file) to upload as the job's code")
	f.StringVar(&command, "command", "", "the command as one bash line, instead of the words after --")
	f.StringArrayVarP(&env, "env", "e", nil, "environment variable NAME=VALUE (repeatable)")
	f.StringArrayVar(&inputs, "input", nil, "literal input NAME=VALUE, used as ${{inputs.NAME}} (repeatable)")
	f.StringArrayVar(&outputs, "output-name", nil, "output folder NAME, used as ${{outputs.NAME}} and kept after the job (repeatable; download it with chub job download --output-name NAME)")
	f.StringVar(&timeout, "timeout", "", "time limit, e.g. 10m or 2h (the job Fails when it runs longer)")
	f.StringVar(&display, "display-name", "", "display name")
	f.StringVar(&experiment, "experiment-name", "", "experiment name (default Default)")
	f.StringVar(&environment, "environment", "", "environment azureml:NAME:VERSION or azureml:NAME@latest (default: the instance's own)")
	f.StringVar(&description, "description", "", "description")
	f.StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable)")
	f.BoolVarP(&stream, "stream", "s", false, "follow the job's log until it ends and exit with its result")
	addScopeFlags(cmd, g)
	return cmd
}

// draftFromFlags builds a job from create's flags.
func draftFromFlags(compute, code, command string, words, env, inputs, outputs, tags []string, timeout string) (*jobDraft, error) {
	if compute == "" {
		return nil, fmt.Errorf("--compute is required (or --file job.yml): chub job create --compute INSTANCE -- COMMAND")
	}
	d := &jobDraft{Compute: compute}
	switch {
	case command != "" && len(words) > 0:
		return nil, fmt.Errorf("give the command either with --command or after --, not both")
	case command != "":
		d.Command = command
	case len(words) > 0:
		d.Command = shellJoin(words)
	default:
		return nil, fmt.Errorf("no command: put it after --, e.g. chub job create --compute %s -- python train.py", compute)
	}
	if code != "" {
		if err := d.setCode(code, "."); err != nil {
			return nil, fmt.Errorf("--%w", err)
		}
		if d.CodePath != "" {
			abs, err := filepath.Abs(d.CodePath)
			if err != nil {
				return nil, err
			}
			d.CodePath = abs
		}
	}
	var err error
	if d.Env, err = keyValues("--env", env, false); err != nil {
		return nil, err
	}
	if d.Inputs, err = keyValues("--input", inputs, false); err != nil {
		return nil, err
	}
	for n := range d.Inputs {
		if !bindingName.MatchString(n) {
			return nil, fmt.Errorf("--input %s: an input name is letters, digits and _ and does not start with a digit", n)
		}
	}
	if d.Tags, err = keyValues("--tag", tags, true); err != nil {
		return nil, err
	}
	for _, o := range outputs {
		if !bindingName.MatchString(o) {
			return nil, fmt.Errorf("--output-name %q: an output name is letters, digits and _ and does not start with a digit", o)
		}
		if d.Outputs == nil {
			d.Outputs = map[string]client.JobOutput{}
		}
		d.Outputs[o] = client.JobOutput{JobOutputType: "uri_folder"}
	}
	if timeout != "" {
		t, err := parseTimeout(timeout)
		if err != nil || t < time.Second {
			return nil, fmt.Errorf("--timeout %q: give a duration of a second or more, e.g. 90s, 10m, 2h or 1d12h", timeout)
		}
		d.Timeout = t
	}
	return d, nil
}

// parseTimeout reads a Go duration that may start with days (1d12h).
func parseTimeout(s string) (time.Duration, error) {
	var days time.Duration
	if d, rest, ok := strings.Cut(s, "d"); ok && isDigits(d) && len(d) <= 5 {
		n, _ := strconv.Atoi(d)
		days, s = time.Duration(n)*24*time.Hour, rest
		if s == "" {
			return days, nil
		}
	}
	t, err := time.ParseDuration(s)
	return days + t, err
}

// keyValues reads repeated NAME=VALUE flags; noValue lets "NAME" mean "".
func keyValues(flag string, kvs []string, noValue bool) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" || (!ok && !noValue) {
			return nil, fmt.Errorf("%s %q: must be NAME=VALUE", flag, kv)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%s %s is given twice", flag, k)
		}
		m[k] = v
	}
	return m, nil
}

// scopeHint is the -w/-g flags to repeat in a suggested command.
func (g *globals) scopeHint() string {
	h := ""
	if g.workspace != "" {
		h += " -w " + shellQuote(g.workspace)
	}
	if g.group != "" {
		h += " -g " + shellQuote(g.group)
	}
	return h
}

// submitJob resolves a draft's references (compute, code, environment)
// and submits it.
func (g *globals) submitJob(ctx context.Context, c *client.Client, ws string, d *jobDraft, streaming bool) (*client.Job, error) {
	name := d.Name
	if name == "" {
		var err error
		if name, err = randomJobName(); err != nil {
			return nil, err
		}
	}
	if !chub.JobNamePattern.MatchString(name) {
		return nil, fmt.Errorf("job name %q: use letters, digits, - and _, starting with a letter or digit, at most 255 characters", name)
	}
	if _, err := c.GetJob(ctx, ws, name); err == nil {
		return nil, fmt.Errorf("job %s already exists in workspace %s; pick another --name, or leave it out for a new one", name, ws)
	} else if !client.IsNotFound(err) {
		return nil, fmt.Errorf("check job %s: %w", name, err)
	}
	computeID, err := g.resolveCompute(ctx, c, ws, d.Compute)
	if err != nil {
		return nil, err
	}
	p := client.JobProperties{
		JobType: "Command", Command: d.Command, ComputeID: computeID,
		EnvironmentVariables: d.Env, DisplayName: d.DisplayName, ExperimentName: d.ExperimentName,
		Description: d.Description, Tags: d.Tags, Properties: d.Properties, Outputs: d.Outputs,
	}
	if len(d.Inputs) > 0 {
		p.Inputs = map[string]client.JobInput{}
		for k, v := range d.Inputs {
			p.Inputs[k] = client.JobInput{JobInputType: "literal", Value: v}
		}
	}
	if d.Timeout > 0 {
		p.Limits = &client.JobLimits{JobLimitsType: "Command", Timeout: isoDuration(d.Timeout)}
	}
	switch {
	case d.CodePath != "":
		if p.CodeID, err = g.uploadCode(ctx, c, ws, d.CodePath); err != nil {
			return nil, err
		}
	case d.CodeRef != "":
		if p.CodeID, err = assetRef(c, ws, chub.AssetCode, d.CodeRef); err != nil {
			return nil, err
		}
	}
	if p.EnvironmentID, err = g.resolveEnvironment(ctx, c, ws, d); err != nil {
		return nil, err
	}
	j, _, err := c.CreateOrUpdateJob(ctx, ws, name, p)
	if err != nil {
		return nil, fmt.Errorf("submit job %s: %w", name, err)
	}
	if streaming || (g.json() && g.verbose) {
		g.progressf("Submitted job %s to %s.\n", j.Name, lastSegment(j.Properties.ComputeID))
	}
	return j, nil
}

// resolveCompute turns azureml:NAME, NAME or an ARM id into the compute's
// ARM id, checking that an instance named in this workspace exists.
func (g *globals) resolveCompute(ctx context.Context, c *client.Client, ws, ref string) (string, error) {
	ref = strings.TrimPrefix(ref, "azureml:")
	if strings.HasPrefix(ref, "/") {
		return ref, nil
	}
	if ref == "" || strings.Contains(ref, "/") {
		return "", fmt.Errorf("compute %q: name a compute instance, e.g. azureml:ci1", ref)
	}
	ci, err := c.GetCompute(ctx, ws, ref)
	if client.IsNotFound(err) {
		return "", fmt.Errorf("compute instance %s not found in workspace %s; see chub computetarget list%s, or create it: chub computetarget create computeinstance -n %s -s STANDARD_DS3_V2", ref, ws, g.scopeHint(), ref)
	}
	if err != nil {
		return "", fmt.Errorf("look up compute instance %s: %w", ref, err)
	}
	if st := ci.Properties.Properties.State; st != chub.StateRunning && st != chub.StateJobRunning {
		g.progressf("Note: compute instance %s is %s; the job waits Queued until it runs (chub computetarget start computeinstance -n %s).\n", ref, st, ref)
	}
	if ci.ID != "" {
		return ci.ID, nil
	}
	return c.WorkspaceID(ws) + "/computes/" + ref, nil
}

// assetRef turns azureml:NAME:VERSION or azureml:/subscriptions/... into
// a version's ARM id.
func assetRef(c *client.Client, ws string, kind chub.AssetKind, ref string) (string, error) {
	r := strings.TrimPrefix(ref, "azureml:")
	if strings.HasPrefix(r, "/") {
		return r, nil
	}
	n, v, ok := strings.Cut(r, ":")
	if !ok || n == "" || v == "" || strings.Contains(v, ":") {
		if kind == chub.AssetEnvironment {
			return "", fmt.Errorf("environment %s: give azureml:NAME:VERSION or azureml:NAME@latest", ref)
		}
		return "", fmt.Errorf("code %s: give azureml:NAME:VERSION", ref)
	}
	return c.AssetVersionID(ws, kind, n, v), nil
}

// anonymousEnvironment is the name az ml gives inline environments.
const anonymousEnvironment = "CliV2AnonymousEnvironment"

// resolveEnvironment returns the environment version's ARM id ("" for the
// instance's own), registering an inline one.
func (g *globals) resolveEnvironment(ctx context.Context, c *client.Client, ws string, d *jobDraft) (string, error) {
	if d.HasImage {
		version := digestHex("image:" + d.EnvironmentImage)[:32]
		if ev, err := c.GetEnvironmentVersion(ctx, ws, anonymousEnvironment, version); err == nil && ev.Properties.Image == d.EnvironmentImage {
			return idOr(ev.ID, c.AssetVersionID(ws, chub.AssetEnvironment, anonymousEnvironment, version)), nil
		} else if err != nil && !client.IsNotFound(err) {
			return "", fmt.Errorf("look up the inline environment: %w", err)
		}
		ev, err := c.PutEnvironmentVersion(ctx, ws, anonymousEnvironment, version, client.AssetProperties{Image: d.EnvironmentImage})
		if err != nil {
			return "", fmt.Errorf("register the inline environment (image %q): %w", d.EnvironmentImage, err)
		}
		return idOr(ev.ID, c.AssetVersionID(ws, chub.AssetEnvironment, anonymousEnvironment, version)), nil
	}
	if d.Environment == "" {
		return "", nil
	}
	if n, ok := strings.CutSuffix(strings.TrimPrefix(d.Environment, "azureml:"), "@latest"); ok {
		vs, err := c.ListEnvironmentVersions(ctx, ws, n)
		if err != nil {
			return "", fmt.Errorf("find the latest version of environment %s: %w", n, err)
		}
		v := newestVersion(vs)
		if v == nil {
			return "", fmt.Errorf("environment %s has no versions in workspace %s", n, ws)
		}
		return idOr(v.ID, c.AssetVersionID(ws, chub.AssetEnvironment, n, v.Name)), nil
	}
	return assetRef(c, ws, chub.AssetEnvironment, d.Environment)
}

// newestVersion picks the version made last (by systemData.createdAt,
// then by version number).
func newestVersion(vs []client.AssetVersion) *client.AssetVersion {
	if len(vs) == 0 {
		return nil
	}
	sorted := append([]client.AssetVersion(nil), vs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		var ta, tb time.Time
		if a.SystemData != nil && a.SystemData.CreatedAt != nil {
			ta = *a.SystemData.CreatedAt
		}
		if b.SystemData != nil && b.SystemData.CreatedAt != nil {
			tb = *b.SystemData.CreatedAt
		}
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
		return versionLess(b.Name, a.Name)
	})
	return &sorted[0]
}

// versionLess orders versions numerically when both are numbers.
func versionLess(a, b string) bool {
	if len(a) != len(b) && isDigits(a) && isDigits(b) {
		return len(a) < len(b)
	}
	return a < b
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func idOr(id, fallback string) string {
	if id != "" {
		return id
	}
	return fallback
}

// uploadCode tars a code folder, and uploads it unless a code version of
// the same content exists, returning the version's ARM id.
func (g *globals) uploadCode(ctx context.Context, c *client.Client, ws, dir string) (string, error) {
	tmp, err := os.CreateTemp("", "chub-code-*.tar.gz")
	if err != nil {
		return "", fmt.Errorf("make a temporary file for the code: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	start := time.Now()
	digest, st, err := tarCode(dir, tmp)
	if err != nil {
		return "", err
	}
	for _, s := range st.Skipped {
		g.progressf("Left out of the code: %s\n", s)
	}
	name, version := digest[:32], "1"
	if v, err := c.GetCodeVersion(ctx, ws, name, version); err == nil {
		g.progressf("Code %s: unchanged since an earlier upload (code %s).\n", dir, name)
		return idOr(v.ID, c.AssetVersionID(ws, chub.AssetCode, name, version)), nil
	} else if !client.IsNotFound(err) {
		return "", fmt.Errorf("look up code %s: %w", name, err)
	}
	size, _ := tmp.Seek(0, io.SeekEnd)
	g.progressf("Uploading code %s (%d files, %s compressed)...\n", dir, st.Files, humanBytes(size))
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	pu, err := c.StartPendingUpload(ctx, ws, name, version)
	if err != nil {
		return "", fmt.Errorf("start the code upload: %w", err)
	}
	if _, err := c.UploadBlob(ctx, pu.BlobReferenceForConsumption.Credential.SASURI, tmp); err != nil {
		return "", fmt.Errorf("upload code %s: %w", dir, err)
	}
	uri := pu.BlobReferenceForConsumption.BlobURI
	if uri == "" {
		uri, _, _ = strings.Cut(pu.BlobReferenceForConsumption.Credential.SASURI, "?")
	}
	v, err := c.PutCodeVersion(ctx, ws, name, version, client.AssetProperties{CodeURI: uri})
	var ce *client.Error
	if errors.As(err, &ce) && ce.StatusCode == 409 {
		// The same content was registered meanwhile: use that.
		v, err = c.GetCodeVersion(ctx, ws, name, version)
	}
	if err != nil {
		return "", fmt.Errorf("register code %s: %w", name, err)
	}
	g.progressf("  uploaded in %.1fs (code %s).\n", time.Since(start).Seconds(), name)
	return idOr(v.ID, c.AssetVersionID(ws, chub.AssetCode, name, version)), nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// lastSegment is the last path segment of an ARM id (a compute's name).
func lastSegment(id string) string {
	return id[strings.LastIndex(id, "/")+1:]
}
