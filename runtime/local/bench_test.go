package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer"

	chub "github.com/computehub/chub"
	"github.com/computehub/chub/runtime/runtimetest"
	"github.com/computehub/chub/streamproto"
)

func benchSpec(b *testing.B) chub.InstanceSpec {
	return chub.InstanceSpec{
		ID:          fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano()),
		Hostname:    "bench",
		CPUMillis:   1000,
		MemoryBytes: 1 << 30,
	}
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCreateToRunning measures Start of a new instance: its disk is
// made, its container started, its agent answers.
func BenchmarkCreateToRunning(b *testing.B) {
	rt := newRuntime(b)
	ctx := context.Background()
	for b.Loop() {
		spec := benchSpec(b)
		must(b, rt.Start(ctx, spec))
		b.StopTimer()
		must(b, rt.Destroy(ctx, spec.ID))
		b.StartTimer()
	}
}

func BenchmarkStart(b *testing.B) {
	rt := newRuntime(b)
	ctx := context.Background()
	spec := benchSpec(b)
	must(b, rt.Create(ctx, spec))
	defer rt.Destroy(ctx, spec.ID)
	for b.Loop() {
		must(b, rt.Start(ctx, spec))
		b.StopTimer()
		must(b, rt.Stop(ctx, spec.ID, 5*time.Second))
		b.StartTimer()
	}
}

func BenchmarkStop(b *testing.B) {
	rt := newRuntime(b)
	ctx := context.Background()
	spec := benchSpec(b)
	defer rt.Destroy(ctx, spec.ID)
	for b.Loop() {
		b.StopTimer()
		must(b, rt.Start(ctx, spec))
		b.StartTimer()
		must(b, rt.Stop(ctx, spec.ID, 5*time.Second))
	}
}

func BenchmarkDestroy(b *testing.B) {
	rt := newRuntime(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		spec := benchSpec(b)
		must(b, rt.Start(ctx, spec))
		b.StartTimer()
		must(b, rt.Destroy(ctx, spec.ID))
	}
}

func BenchmarkExec(b *testing.B) {
	rt := newRuntime(b)
	ctx := context.Background()
	spec := benchSpec(b)
	must(b, rt.Start(ctx, spec))
	defer rt.Destroy(ctx, spec.ID)
	for b.Loop() {
		res, err := runtimetest.Exec(ctx, rt, spec.ID, streamproto.ExecRequest{Command: []string{"true"}}, nil)
		must(b, err)
		if res.Code != 0 {
			b.Fatalf("true exited %d", res.Code)
		}
	}
}

// BenchmarkIdleMemory reports what an idle instance costs: the agent's
// RSS and the instance's cgroup memory usage.
func BenchmarkIdleMemory(b *testing.B) {
	rt := newRuntime(b)
	ctx := context.Background()
	spec := benchSpec(b)
	must(b, rt.Start(ctx, spec))
	defer rt.Destroy(ctx, spec.ID)
	time.Sleep(time.Second)
	c, err := libcontainer.Load(filepath.Join(imageRoot(), "state"), spec.ID)
	must(b, err)
	st, err := c.State()
	must(b, err)
	for b.Loop() {
		time.Sleep(time.Millisecond)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.InitProcessPid))
	must(b, err)
	var rssKiB float64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.ParseFloat(strings.Fields(v)[0], 64)
		}
	}
	usage, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory/chub", spec.ID, "memory.usage_in_bytes"))
	must(b, err)
	u, _ := strconv.ParseFloat(strings.TrimSpace(string(usage)), 64)
	b.ReportMetric(rssKiB/1024, "agent-RSS-MiB")
	b.ReportMetric(u/(1<<20), "cgroup-MiB")
}
