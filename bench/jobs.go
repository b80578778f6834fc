package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// JobsOptions configure the jobs benchmark (`chub bench jobs`).
type JobsOptions struct {
	// VMSize of the instance the jobs run on; its vCPUs are the slots.
	VMSize string
	// Latency is how many jobs are timed from submit to Running, one at a time.
	Latency int
	// Jobs is how many short jobs the throughput run submits at once.
	Jobs int
	// JobSeconds is how long each throughput job sleeps.
	JobSeconds float64
	// Poll is how often a job is polled while its start is timed.
	Poll time.Duration
	// Sample is how often the job list is sampled during the throughput run.
	Sample time.Duration
}

func (o *JobsOptions) defaults() {
	if o.VMSize == "" {
		o.VMSize = "Standard_DS3_v2"
	}
	if o.Latency <= 0 {
		o.Latency = 40
	}
	if o.Jobs <= 0 {
		o.Jobs = 100
	}
	if o.JobSeconds <= 0 {
		o.JobSeconds = 1
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Millisecond
	}
	if o.Sample <= 0 {
		o.Sample = 100 * time.Millisecond
	}
}

// JobsReport holds the jobs benchmark's measurements.
type JobsReport struct {
	Options JobsOptions
	Started time.Time
	Host    string
	Kernel  string
	Slots   int // the instance's vCPUs: how many jobs may run at once
	// Load is the host's 1-minute load average at the start and the end.
	Load [2]string

	// Latency: from sending the PUT to the first GET that shows Running.
	Latency []time.Duration
	// ServerLatency: the job's startTime minus its systemData.createdAt.
	ServerLatency []time.Duration
	// Single: one job of the throughput kind alone, PUT to Completed.
	Single []time.Duration
	// Submit is how long the PUTs of the throughput run took; Total is
	// from the first PUT to the last job Completed.
	Submit, Total time.Duration
	Failed        []string // throughput jobs that did not complete
	// RunningSamples: how many jobs were Running at each sample taken
	// while some were still waiting (NotStarted or Queued).
	RunningSamples []int
	// ActiveSamples: jobs holding a slot (Preparing, Running or
	// CancelRequested) at those samples; Finalizing ones hold none.
	ActiveSamples []int
	// Early is how many of the samples came before any job was Running.
	Early int

	// Memory of one running `sleep` job.
	Mem *JobMemory
}

// JobMemory is what one running job costs in memory on the host.
type JobMemory struct {
	Cgroup         int64 // bytes charged to the job's memory cgroup
	SupervisorRSS  int64 // the job supervisor's resident memory
	SupervisorPSS  int64 // its proportional share (the chub binary's pages shared)
	SupervisorAnon int64 // its anonymous memory: what it alone costs
	CommandRSS     int64 // the command's own processes
	CommandPSS     int64 //
	Processes      []string
}

// RunJobs creates an instance of o.VMSize, runs the jobs benchmark on it
// and deletes it. It must run on the server's host to read job cgroups.
func RunJobs(ctx context.Context, c *client.Client, o JobsOptions, log io.Writer) (*JobsReport, error) {
	o.defaults()
	r := &JobsReport{Options: o, Started: time.Now(), Host: hostDescription(), Kernel: kernel()}
	r.Load[0] = loadAverage()
	defer func() { r.Load[1] = loadAverage() }()
	run := "b" + strconv.FormatInt(time.Now().UnixNano()%1e8, 36)
	name := "bench-jobs-" + run
	var jobs []string
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		for _, j := range jobs {
			c.ArchiveJob(cctx, "", j)
		}
		if op, err := c.DeleteCompute(cctx, "", name); err == nil && op != nil {
			c.Wait(cctx, op, "", "", nil)
		}
	}()
	fmt.Fprintf(log, "creating instance %s (%s)\n", name, o.VMSize)
	_, op, err := c.CreateCompute(ctx, client.CreateRequest{Name: name, Settings: chub.InstanceSettings{VMSize: o.VMSize}})
	if err != nil {
		return nil, fmt.Errorf("create the instance: %w", err)
	}
	if op != nil {
		if _, err := c.Wait(ctx, op, "", "", nil); err != nil {
			return nil, fmt.Errorf("create the instance: %w", err)
		}
	}
	if _, err := timeUntil(ctx, c, name, chub.StateRunning, 50*time.Millisecond, func() error { return nil }); err != nil {
		return nil, err
	}
	if size, ok := chub.BuiltinCatalog().Lookup(o.VMSize); ok {
		r.Slots = size.VCPUs
	}
	computeID := c.WorkspaceID("") + "/computes/" + name
	seq := 0
	submit := func(kind, command string) (string, error) {
		seq++
		j := fmt.Sprintf("%s-%s%d", run, kind, seq)
		jobs = append(jobs, j)
		_, _, err := c.CreateOrUpdateJob(ctx, "", j, client.JobProperties{
			JobType: "Command", Command: command, ComputeID: computeID,
			Tags: map[string]string{"chub-bench": run + "-" + kind},
		})
		if err != nil {
			return j, fmt.Errorf("submit job %s: %w", j, err)
		}
		return j, nil
	}
	waitEnd := func(j string) (*client.Job, error) {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			job, err := c.GetJob(ctx, "", j)
			if err != nil {
				return nil, err
			}
			if job.Properties.Status.Terminal() {
				return job, nil
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("job %s is still %s after 2 minutes", j, job.Properties.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A first job outside the figures: it pays for one-time work.
	if j, err := submit("w", "true"); err != nil {
		return nil, err
	} else if job, err := waitEnd(j); err != nil {
		return nil, err
	} else if job.Properties.Status != chub.JobCompleted {
		return nil, fmt.Errorf("warm-up job %s: %s: %s", j, job.Properties.Status, errText(job))
	}

	// (a) submit → Running, one job at a time.
	for i := 0; i < o.Latency; i++ {
		t0 := time.Now()
		j, err := submit("l", "sleep 0.3")
		if err != nil {
			return nil, err
		}
		for {
			job, err := c.GetJob(ctx, "", j)
			if err != nil {
				return nil, err
			}
			st := job.Properties.Status
			if st == chub.JobRunning || st == chub.JobFinalizing || st == chub.JobCompleted {
				r.Latency = append(r.Latency, time.Since(t0))
				break
			}
			if st.Terminal() {
				return nil, fmt.Errorf("job %s: %s: %s", j, st, errText(job))
			}
			if time.Since(t0) > time.Minute {
				return nil, fmt.Errorf("job %s is still %s after a minute", j, st)
			}
			time.Sleep(o.Poll)
		}
		job, err := waitEnd(j)
		if err != nil {
			return nil, err
		}
		if p := job.Properties; p.StartTime != nil && job.SystemData != nil && job.SystemData.CreatedAt != nil {
			r.ServerLatency = append(r.ServerLatency, p.StartTime.Sub(*job.SystemData.CreatedAt))
		}
	}
	fmt.Fprintf(log, "submit→Running: %d samples, median %s ms\n", len(r.Latency), ms(percentile(r.Latency, 0.5)))

	// (b) throughput: first one job alone, then Jobs at once.
	sleep := "sleep " + strconv.FormatFloat(o.JobSeconds, 'f', -1, 64)
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		j, err := submit("s", sleep)
		if err != nil {
			return nil, err
		}
		job, err := waitEnd(j)
		if err != nil {
			return nil, err
		}
		if job.Properties.Status != chub.JobCompleted {
			return nil, fmt.Errorf("job %s: %s: %s", j, job.Properties.Status, errText(job))
		}
		r.Single = append(r.Single, time.Since(t0))
	}
	fmt.Fprintf(log, "one %q job alone: median %s ms\n", sleep, ms(percentile(r.Single, 0.5)))
	tag := run + "-t"
	t0 := time.Now()
	var batch []string
	for i := 0; i < o.Jobs; i++ {
		j, err := submit("t", sleep)
		if err != nil {
			return nil, err
		}
		batch = append(batch, j)
	}
	r.Submit = time.Since(t0)
	fmt.Fprintf(log, "%d jobs submitted in %s ms\n", o.Jobs, ms(r.Submit))
	for {
		list, err := c.ListJobs(ctx, "", client.ListJobsOptions{Tag: "chub-bench=" + tag, View: chub.JobViewAll})
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		var waiting, running, active, done int
		for _, j := range list {
			switch j.Properties.Status {
			case chub.JobNotStarted, chub.JobQueued:
				waiting++
			case chub.JobRunning:
				running++
				active++
			case chub.JobPreparing, chub.JobCancelRequested:
				active++
			case chub.JobFinalizing:
			default:
				done++
			}
		}
		if waiting > 0 {
			if running == 0 && len(r.RunningSamples) == r.Early {
				r.Early++
			}
			r.RunningSamples = append(r.RunningSamples, running)
			r.ActiveSamples = append(r.ActiveSamples, active)
		}
		if len(list) >= o.Jobs && done == len(list) {
			r.Total = time.Since(t0)
			for _, j := range list {
				if j.Properties.Status != chub.JobCompleted {
					r.Failed = append(r.Failed, j.Name+": "+string(j.Properties.Status)+": "+errText(&j))
				}
			}
			break
		}
		if time.Since(t0) > 10*time.Minute {
			return nil, fmt.Errorf("the %d jobs did not end within 10 minutes (%d waiting, %d active)", o.Jobs, waiting, active)
		}
		time.Sleep(o.Sample)
	}
	fmt.Fprintf(log, "%d jobs ended in %s ms (%d did not complete)\n", o.Jobs, ms(r.Total), len(r.Failed))

	// (c) memory of a running job.
	mem, err := measureJobMemory(ctx, c, name, submit)
	if err != nil {
		fmt.Fprintf(log, "job memory: %v\n", err)
	} else {
		r.Mem = mem
	}
	return r, nil
}

// measureJobMemory runs a long sleep job, reads its cgroup and processes
// on the host once it runs, and cancels it.
func measureJobMemory(ctx context.Context, c *client.Client, name string, submit func(kind, command string) (string, error)) (*JobMemory, error) {
	nodes, err := c.ListNodes(ctx, "", name)
	if err != nil || len(nodes) == 0 {
		return nil, fmt.Errorf("no node: %v", err)
	}
	id := strings.TrimPrefix(nodes[0].NodeID, "tvm-")
	j, err := submit("m", "sleep 600")
	if err != nil {
		return nil, err
	}
	defer c.CancelJob(context.WithoutCancel(ctx), "", j)
	deadline := time.Now().Add(time.Minute)
	for {
		job, err := c.GetJob(ctx, "", j)
		if err != nil {
			return nil, err
		}
		if job.Properties.Status == chub.JobRunning {
			break
		}
		if job.Properties.Status.Terminal() || time.Now().After(deadline) {
			return nil, fmt.Errorf("job %s is %s: %s", j, job.Properties.Status, errText(job))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // let it settle
	var dirs []string
	for _, pat := range []string{"/sys/fs/cgroup/memory/chub/" + id + "/jobs/*", "/sys/fs/cgroup/chub/" + id + "/jobs/*"} {
		m, _ := filepath.Glob(pat)
		for _, d := range m {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				dirs = append(dirs, d)
			}
		}
		if len(dirs) > 0 {
			break
		}
	}
	if len(dirs) != 1 {
		return nil, fmt.Errorf("want one job cgroup of instance %s on this host (run the benchmark on the server's host), found %v", id, dirs)
	}
	m := &JobMemory{}
	for _, f := range []string{"memory.usage_in_bytes", "memory.current"} {
		if b, err := os.ReadFile(filepath.Join(dirs[0], f)); err == nil {
			m.Cgroup, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			break
		}
	}
	procs, err := os.ReadFile(filepath.Join(dirs[0], "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	for _, p := range strings.Fields(string(procs)) {
		cmd, _ := os.ReadFile("/proc/" + p + "/cmdline")
		line := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		rss, pss, anon := rollup(p)
		m.Processes = append(m.Processes, fmt.Sprintf("`%s` (RSS %.1f MiB, PSS %.1f MiB)", line, mib(rss), mib(pss)))
		if strings.Contains(line, "job-supervise") || strings.HasPrefix(line, "/.chub/chub") {
			m.SupervisorRSS += rss
			m.SupervisorPSS += pss
			m.SupervisorAnon += anon
		} else {
			m.CommandRSS += rss
			m.CommandPSS += pss
		}
	}
	if m.SupervisorRSS == 0 {
		return m, errors.New("no supervisor process in the job's cgroup: " + strings.Join(m.Processes, ", "))
	}
	return m, nil
}

// rollup reads a process's Rss and Pss from smaps_rollup, in bytes.
func rollup(pid string) (rss, pss, anon int64) {
	b, err := os.ReadFile("/proc/" + pid + "/smaps_rollup")
	if err != nil {
		return 0, 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Rss:":
			rss = kb * 1024
		case "Pss:":
			pss = kb * 1024
		case "Anonymous:":
			anon = kb * 1024
		}
	}
	return rss, pss, anon
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func errText(j *client.Job) string {
	if j.Properties.Error != nil {
		return j.Properties.Error.Message
	}
	return j.Properties.StatusMessage
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b) + " ?")[0]
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// Markdown renders the report as a BENCHMARKS.md section.
func (r *JobsReport) Markdown() string {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "## Jobs benchmark, %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s, kernel %s; 1-minute load average %s at the start, %s at the end. "+
		"One instance of %s (%d vCPUs: %d job slots); `chub bench jobs`.\n\n",
		r.Host, r.Kernel, r.Load[0], r.Load[1], o.VMSize, r.Slots, r.Slots)
	b.WriteString("| measure | n | median ms | p90 ms | p99 ms | target |\n|---|---|---|---|---|---|\n")
	row := func(name string, ds []time.Duration, target string) {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", name, len(ds), ms(percentile(ds, 0.5)), ms(percentile(ds, 0.9)), ms(percentile(ds, 0.99)), target)
	}
	row(fmt.Sprintf("submit→Running (PUT sent → first GET showing Running, polled every %v)", o.Poll), r.Latency, "< 150 ms median")
	row("createdAt→startTime (the server's own timestamps)", r.ServerLatency, "")
	row(fmt.Sprintf("one `sleep %g` job alone, PUT → Completed", o.JobSeconds), r.Single, "")
	b.WriteString("\n")
	single := percentile(r.Single, 0.5)
	if r.Slots > 0 && single > 0 {
		rounds := (o.Jobs + r.Slots - 1) / r.Slots
		ideal := time.Duration(rounds) * single
		fmt.Fprintf(&b, "Throughput: %d `sleep %g` jobs submitted at once (the PUTs took %s ms) all ended in %.2f s; "+
			"%d jobs / %d slots = %d rounds × one job's time alone (%s ms) is %.2f s, so the run took %.1f%% of that (target ≤ 110%%).",
			o.Jobs, o.JobSeconds, ms(r.Submit), r.Total.Seconds(), o.Jobs, r.Slots, rounds, ms(single), ideal.Seconds(),
			100*float64(r.Total)/float64(ideal))
		if len(r.Failed) > 0 {
			fmt.Fprintf(&b, " %d did not complete: %s.", len(r.Failed), strings.Join(r.Failed[:min(3, len(r.Failed))], "; "))
		}
		b.WriteString("\n\n")
	}
	if len(r.RunningSamples) > 0 {
		mn, mx, avg := stats(r.RunningSamples[r.Early:])
		amn, amx, aavg := stats(r.ActiveSamples[r.Early:])
		fmt.Fprintf(&b, "Jobs at once, sampled every %v while some still waited (NotStarted or Queued), from the first job Running on "+
			"(%d samples; %d earlier ones, before the first job ran, left out): Running min %d, avg %.2f, max %d; "+
			"holding a slot (Preparing, Running) min %d, avg %.2f, max %d (slots: %d; a Finalizing job, its logs being kept, holds none).\n\n",
			o.Sample, len(r.RunningSamples)-r.Early, r.Early, mn, avg, mx, amn, aavg, amx, r.Slots)
	}
	if m := r.Mem; m != nil {
		fmt.Fprintf(&b, "Memory of one running `sleep 600` job, beyond its command: the job supervisor's RSS is %.1f MiB, "+
			"its PSS %.1f MiB (the chub binary's pages are shared with the agent), its anonymous memory %.1f MiB (its own alone); "+
			"the command's processes: RSS %.1f MiB, PSS %.1f MiB. The job's memory cgroup is charged %.2f MiB "+
			"(cgroup v1 leaves what the supervisor used before it was placed charged to the instance). Processes: %s.\n",
			mib(m.SupervisorRSS), mib(m.SupervisorPSS), mib(m.SupervisorAnon), mib(m.CommandRSS), mib(m.CommandPSS), mib(m.Cgroup),
			strings.Join(m.Processes, ", "))
	}
	return b.String()
}

func stats(xs []int) (mn, mx int, avg float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	mn, mx = slices.Min(xs), slices.Max(xs)
	sum := 0
	for _, x := range xs {
		sum += x
	}
	return mn, mx, float64(sum) / float64(len(xs))
}
