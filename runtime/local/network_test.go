package local_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/computehub/chub/runtime/local"
	"github.com/computehub/chub/runtime/runtimetest"
	"github.com/computehub/chub/streamproto"
)

// hostGreeter listens on the host's 127.0.0.1 and greets every connection.
func hostGreeter(t *testing.T, greeting string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, greeting)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// pastaOf lists the pasta processes whose command line names instance id.
func pastaOf(id string) []string {
	var out []string
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(b), "pasta\x00") || !strings.Contains(string(b), "/"+id+"/") {
			continue
		}
		if st, err := os.ReadFile(filepath.Join(filepath.Dir(f), "status")); err == nil && strings.Contains(string(st), "State:\tZ") {
			continue
		}
		out = append(out, filepath.Dir(f))
	}
	return out
}

func needPasta(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/pasta"); err != nil {
		t.Skip("pasta is not installed (apt-get install passt)")
	}
}

// An instance with outbound network reaches the host's loopback at
// HostLoopbackAddress, has a default route, a resolver and an address; one
// without has loopback only. Stop and Destroy leave no pasta behind.
func TestOutboundNetwork(t *testing.T) {
	needPasta(t)
	newRuntime(t) // skips unless root
	ctx := context.Background()
	port := hostGreeter(t, "hello from the host")
	closed := hostGreeter(t, "a port nobody opened")
	// Of the host's loopback, the instances reach only the ports opened.
	withPort := func() *local.Runtime {
		rt, err := local.New(local.Config{Root: imageRoot(), AgentBinary: agentBinary(t), HostPorts: []uint16{uint16(port)}})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	rt := withPort()
	dial := fmt.Sprintf("bash -c 'exec 3<>/dev/tcp/%s/%d && cat <&3'", local.HostLoopbackAddress, port)

	on := runtimetest.Spec(t)
	on.OutboundNetwork = true
	runtimetest.Started(t, rt, on)
	if got := runtimetest.Sh(t, rt, on.ID, "", dial); got != "hello from the host\n" {
		t.Errorf("from the instance to the host's loopback: %q", got)
	}
	if got := runtimetest.Sh(t, rt, on.ID, "", fmt.Sprintf("timeout 3 bash -c 'exec 3<>/dev/tcp/%s/%d && cat <&3' 2>&1; echo $?", local.HostLoopbackAddress, closed)); strings.Contains(got, "nobody") || strings.HasSuffix(got, "\n0\n") {
		t.Errorf("from the instance to a host loopback port not opened: %q; want refused", got)
	}
	if got := runtimetest.Sh(t, rt, on.ID, "", "cat /etc/resolv.conf"); !strings.Contains(got, "nameserver "+local.DNSAddress) {
		t.Errorf("resolv.conf = %q", got)
	}
	// The default route (destination 00000000) goes to 10.0.2.2 (0202000A).
	if got := runtimetest.Sh(t, rt, on.ID, "", "cat /proc/net/route"); !strings.Contains(got, "\t00000000\t0202000A\t") {
		t.Errorf("no default route through %s:\n%s", local.HostLoopbackAddress, got)
	}
	st, err := rt.Inspect(ctx, on.ID)
	if err != nil || st.PrivateIP != local.InstanceAddress {
		t.Errorf("Inspect = %+v, %v; want PrivateIP %s", st, err, local.InstanceAddress)
	}
	if p := pastaOf(on.ID); len(p) != 1 {
		t.Errorf("pasta processes of a running instance: %v; want one", p)
	}
	// Start of a running instance neither restarts nor duplicates it.
	if err := rt.Start(ctx, on); err != nil {
		t.Fatal(err)
	}
	if p := pastaOf(on.ID); len(p) != 1 {
		t.Errorf("pasta processes after a second Start: %v; want one", p)
	}
	if err := rt.Stop(ctx, on.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if p := pastaOf(on.ID); len(p) != 0 {
		t.Errorf("pasta of a stopped instance remains: %v", p)
	}
	if err := rt.Start(ctx, on); err != nil {
		t.Fatal(err)
	}
	if got := runtimetest.Sh(t, rt, on.ID, "", dial); got != "hello from the host\n" {
		t.Errorf("after stop/start: %q", got)
	}
	// A pasta that died under a running instance is started again by the
	// next runtime (as after a server that died while starting it).
	for _, p := range pastaOf(on.ID) {
		pid, _ := strconv.Atoi(filepath.Base(p))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for deadline := time.Now().Add(5 * time.Second); len(pastaOf(on.ID)) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	rt = withPort()
	if p := pastaOf(on.ID); len(p) != 1 {
		t.Errorf("pasta processes after a new runtime recovered the network: %v; want one", p)
	}
	if got := runtimetest.Sh(t, rt, on.ID, "", dial); got != "hello from the host\n" {
		t.Errorf("after the network was recovered: %q", got)
	}

	off := runtimetest.Spec(t)
	runtimetest.Started(t, rt, off)
	res, err := runtimetest.Exec(ctx, rt, off.ID, execSh(dial), nil)
	if err != nil || res.Code == 0 {
		t.Errorf("an instance without network reached the host: %+v, %v", res, err)
	}
	if got := runtimetest.Sh(t, rt, off.ID, "", "ls /sys/class/net"); strings.Fields(got)[0] != "lo" || len(strings.Fields(got)) != 1 {
		t.Errorf("interfaces without network: %q; want lo", got)
	}
	if st, _ := rt.Inspect(ctx, off.ID); st.PrivateIP != "" {
		t.Errorf("PrivateIP without network = %q", st.PrivateIP)
	}

	if err := rt.Destroy(ctx, on.ID); err != nil {
		t.Fatal(err)
	}
	if p := pastaOf(on.ID); len(p) != 0 {
		t.Errorf("pasta of a deleted instance remains: %v", p)
	}
}

// TestNetworkStartLatency reports what outbound network adds to Start.
func TestNetworkStartLatency(t *testing.T) {
	needPasta(t)
	if testing.Short() {
		t.Skip("timing")
	}
	newRuntime(t) // skips unless root
	// Its log says, for each Start, when the agent answered and when the
	// instance was ready (network included).
	rt, err := local.New(local.Config{Root: imageRoot(), AgentBinary: agentBinary(t),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	measure := func(network bool) time.Duration {
		spec := runtimetest.Spec(t)
		spec.OutboundNetwork = network
		if err := rt.Create(ctx, spec); err != nil {
			t.Fatal(err)
		}
		defer rt.Destroy(ctx, spec.ID)
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			if err := rt.Start(ctx, spec); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(start))
			if err := rt.Stop(ctx, spec.ID, time.Second); err != nil {
				t.Fatal(err)
			}
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	without, with := measure(false), measure(true)
	t.Logf("Start (median of 5): loopback only %v, with outbound network %v", without.Round(time.Millisecond), with.Round(time.Millisecond))
	// pasta configures the network while the agent starts: what it adds
	// is small next to Start itself. A loaded machine stretches both (and
	// pasta's CPU-bound setup competes with the agent's), so the budget is
	// held only where Start itself is quick.
	if without < 150*time.Millisecond && with-without > 300*time.Millisecond {
		t.Errorf("outbound network added %v to Start; want well under 300ms", with-without)
	}
}

func execSh(script string) streamproto.ExecRequest {
	return streamproto.ExecRequest{Command: []string{"sh", "-c", script}}
}
