// Package bench measures the lifecycle of compute instances against a
// running server: create to Running, stop, start, restart, delete, API GET
// latency and the memory an idle instance costs on the host.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// Options configure a run.
type Options struct {
	Instances int
	VMSize    string
	Gets      int
	// Poll is how often the state is polled while timing an operation.
	Poll time.Duration
}

// Report holds the measurements, in milliseconds unless named otherwise.
type Report struct {
	Options   Options
	Timings   map[string][]time.Duration
	IdleRSS   []int64 // bytes of resident memory of an idle instance's processes
	IdlePSS   []int64 // their proportional share: shared pages divided among sharers
	IdleCgMem []int64 // bytes charged to an idle instance's memory cgroup
	Started   time.Time
	// FirstCreate is the warm-up instance's create→Running, not in Timings.
	FirstCreate time.Duration
	Host        string
}

var phases = []string{"create→Running", "stop", "start", "restart", "delete", "GET"}

// Run creates Instances instances one at a time, timing each phase as a
// client sees it, then deletes them.
func Run(ctx context.Context, c *client.Client, o Options, log io.Writer) (*Report, error) {
	if o.Instances <= 0 {
		o.Instances = 20
	}
	if o.VMSize == "" {
		o.VMSize = "Standard_DS1_v2"
	}
	if o.Gets <= 0 {
		o.Gets = 2000
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Millisecond
	}
	r := &Report{Options: o, Timings: map[string][]time.Duration{}, Started: time.Now()}
	r.Host = hostDescription()
	names := make([]string, o.Instances)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-x%c", strconv.FormatInt(time.Now().UnixNano()%1e6, 36), 'a'+rune(i%26)) + strconv.Itoa(i) + "z"
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		for _, n := range names {
			if op, err := c.DeleteCompute(cctx, "", n); err == nil && op != nil {
				c.Wait(cctx, op, "", "", nil)
			}
		}
	}()
	// A first instance outside the figures: it pays for one-time work such
	// as building the host image on a new data dir.
	warm := "bench-warmup-x"
	t0 := time.Now()
	if _, err := timeUntil(ctx, c, warm, chub.StateRunning, o.Poll, func() error {
		_, _, err := c.CreateCompute(ctx, client.CreateRequest{Name: warm, Settings: chub.InstanceSettings{VMSize: o.VMSize}})
		return err
	}); err != nil {
		return nil, fmt.Errorf("warm-up instance: %w", err)
	}
	r.FirstCreate = time.Since(t0)
	if op, err := c.DeleteCompute(ctx, "", warm); err == nil && op != nil {
		c.Wait(ctx, op, "", "", nil)
	}
	for i, n := range names {
		d, err := timeUntil(ctx, c, n, chub.StateRunning, o.Poll, func() error {
			_, _, err := c.CreateCompute(ctx, client.CreateRequest{Name: n, Settings: chub.InstanceSettings{VMSize: o.VMSize}})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", n, err)
		}
		r.Timings["create→Running"] = append(r.Timings["create→Running"], d)
		fmt.Fprintf(log, "instance %d/%d running in %v\n", i+1, o.Instances, d.Round(time.Millisecond))
	}
	time.Sleep(2 * time.Second) // let instances settle before reading idle memory
	for _, n := range names {
		rss, pss, cg, err := idleMemory(ctx, c, n)
		if err != nil {
			fmt.Fprintf(log, "memory of %s: %v\n", n, err)
			continue
		}
		r.IdleRSS, r.IdlePSS, r.IdleCgMem = append(r.IdleRSS, rss), append(r.IdlePSS, pss), append(r.IdleCgMem, cg)
	}
	start := time.Now()
	for i := 0; i < o.Gets; i++ {
		t := time.Now()
		if _, err := c.GetCompute(ctx, "", names[i%len(names)]); err != nil {
			return nil, err
		}
		r.Timings["GET"] = append(r.Timings["GET"], time.Since(t))
	}
	fmt.Fprintf(log, "%d GETs in %v\n", o.Gets, time.Since(start).Round(time.Millisecond))
	steps := []struct {
		phase string
		op    chub.OperationName
		want  chub.State
	}{{"stop", chub.OpStop, chub.StateStopped}, {"start", chub.OpStart, chub.StateRunning}, {"restart", chub.OpRestart, chub.StateRunning}}
	for _, st := range steps {
		for _, n := range names {
			var op *client.Operation
			d, err := timeUntil(ctx, c, n, st.want, o.Poll, func() error {
				var err error
				op, err = c.Act(ctx, "", n, st.op)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", st.phase, n, err)
			}
			if _, err := c.Wait(ctx, op, "", "", nil); err != nil { // the operation must be over before the next one
				return nil, err
			}
			r.Timings[st.phase] = append(r.Timings[st.phase], d)
		}
		fmt.Fprintf(log, "%s: done for %d instances\n", st.phase, len(names))
	}
	for _, n := range names {
		t := time.Now()
		op, err := c.DeleteCompute(ctx, "", n)
		if err != nil {
			return nil, err
		}
		for {
			cur, err := c.Operation(ctx, op.StatusURL)
			if err != nil {
				return nil, err
			}
			if cur.Done() {
				break
			}
			time.Sleep(o.Poll)
		}
		r.Timings["delete"] = append(r.Timings["delete"], time.Since(t))
	}
	return r, nil
}

// timeUntil runs do and polls until the instance reaches want; the
// instance must first leave want if it is in it (restart).
func timeUntil(ctx context.Context, c *client.Client, name string, want chub.State, poll time.Duration, do func() error) (time.Duration, error) {
	t := time.Now()
	if err := do(); err != nil {
		return 0, err
	}
	for {
		ci, err := c.GetCompute(ctx, "", name)
		if err != nil {
			return 0, err
		}
		p := ci.Properties.Properties
		if p.State == want && (p.LastOperation == nil || p.LastOperation.OperationStatus != string(chub.OpInProgress)) {
			return time.Since(t), nil
		}
		if strings.HasSuffix(string(p.State), "Failed") || p.State == chub.StateUnusable {
			return 0, fmt.Errorf("instance %s is %s: %v", name, p.State, p.Errors)
		}
		if time.Since(t) > 2*time.Minute {
			return 0, fmt.Errorf("instance %s did not reach %s in 2 minutes", name, want)
		}
		time.Sleep(poll)
	}
}

// idleMemory sums the resident memory of the instance's processes and reads
// its memory cgroup's usage, found through the node id (tvm-<id>).
func idleMemory(ctx context.Context, c *client.Client, name string) (rss, pss, cg int64, err error) {
	nodes, err := c.ListNodes(ctx, "", name)
	if err != nil || len(nodes) == 0 {
		return 0, 0, 0, fmt.Errorf("no node: %v", err)
	}
	id := strings.TrimPrefix(nodes[0].NodeID, "tvm-")
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), id) {
			continue
		}
		rollup, err := os.ReadFile(filepath.Join(filepath.Dir(p), "smaps_rollup"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(rollup), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Rss:":
				rss += kb * 1024
			case "Pss:":
				pss += kb * 1024
			}
		}
	}
	for _, pat := range []string{"/sys/fs/cgroup/memory/*/" + id + "/memory.usage_in_bytes", "/sys/fs/cgroup/memory/" + id + "/memory.usage_in_bytes", "/sys/fs/cgroup/*/" + id + "/memory.current"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			b, _ := os.ReadFile(m[0])
			cg, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			break
		}
	}
	if rss == 0 {
		return 0, 0, 0, fmt.Errorf("found no process of instance %s on this host (run the benchmark on the server's host)", id)
	}
	return rss, pss, cg, nil
}

func hostDescription() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		if len(f) >= 2 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s", runtime.NumCPU(), cpu, mem, runtime.GOOS, runtime.GOARCH)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1)*p + 0.5)
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// Markdown renders the report as a BENCHMARKS.md section.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Lifecycle benchmark, %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s. %d instances of %s, one operation at a time, timed by a client polling every %v; `chub bench`.\n\n",
		r.Host, r.Options.Instances, r.Options.VMSize, r.Options.Poll)
	fmt.Fprintf(&b, "A warm-up instance created first (not counted) took %s ms to run, one-time work included.\n\n", ms(r.FirstCreate))
	b.WriteString("| phase | n | median ms | p95 ms | p99 ms | target |\n|---|---|---|---|---|---|\n")
	targets := map[string]string{"create→Running": "< 500 ms median", "stop": "< 300 ms", "start": "< 300 ms", "restart": "", "delete": "", "GET": "< 5 ms p99"}
	for _, p := range phases {
		ds := r.Timings[p]
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", p, len(ds), ms(percentile(ds, 0.5)), ms(percentile(ds, 0.95)), ms(percentile(ds, 0.99)), targets[p])
	}
	if len(r.IdleRSS) > 0 {
		med := func(xs []int64) float64 {
			s := slices.Clone(xs)
			slices.Sort(s)
			return float64(s[len(s)/2]) / (1 << 20)
		}
		fmt.Fprintf(&b, "\nIdle instance memory (target < 15 MiB of overhead), medians: charged to its memory cgroup %.1f MiB; "+
			"proportional set size of its processes (shared pages such as the chub binary divided among the instances and the server) %.1f MiB; "+
			"resident set size counting every shared page in full %.1f MiB.\n", med(r.IdleCgMem), med(r.IdlePSS), med(r.IdleRSS))
	}
	return b.String()
}
