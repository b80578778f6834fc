package e2e

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// TestSecurityCrashAnywhere kills the server with SIGKILL at a random
// moment of a create, start, stop or delete, restarts it and checks that the
// instance converges to what the last accepted request asked for, that a
// delete leaves nothing of the instance (state dir, disk, cgroup, mount,
// processes) and that the quota ledger comes back to zero.
//
// CHUB_CRASH_ROUNDS sets the number of rounds (default 20) and
// CHUB_CRASH_SEED the seed (default: the time; it is logged).
func TestSecurityCrashAnywhere(t *testing.T) {
	rounds := 20
	if v := os.Getenv("CHUB_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CHUB_CRASH_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CHUB_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHUB_CRASH_SEED=%q: want a number", v)
		}
		seed = n
	}
	t.Logf("crash suite: %d rounds, seed %d (CHUB_CRASH_SEED=%d reproduces it)", rounds, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	s := startServer(t)
	const size = "Standard_B1s"
	// The first instance builds the host image (minutes on a busy
	// machine): not the moment under test.
	create(t, s.client(), "warmup", size)
	if op, err := s.client().DeleteCompute(ctx(t), "", "warmup"); err != nil {
		t.Fatal(err)
	} else if _, err := s.client().Wait(ctx(t), op, "", "", nil); err != nil {
		t.Fatal(err)
	}
	var (
		name   string
		id     string // the runtime id of the current instance, once known
		exists bool
		stateN int // number of the instance, for fresh names
		want   chub.State
	)
	for round := 1; round <= rounds; round++ {
		c := s.client()
		var op chub.OperationName
		switch {
		case !exists:
			op = chub.OpCreate
		case want == chub.StateRunning:
			op = []chub.OperationName{chub.OpStop, chub.OpDelete}[rng.IntN(2)]
		default:
			op = []chub.OperationName{chub.OpStart, chub.OpDelete}[rng.IntN(2)]
		}
		// A kill at any moment of the operation, from at once to after
		// its usual end; most in its first 400 ms, where the runtime is
		// halfway through (an instance starts in about 100 ms).
		delay := time.Duration(rng.IntN(400)) * time.Millisecond
		if rng.IntN(3) == 0 {
			delay = time.Duration(rng.IntN(2500)) * time.Millisecond
		}
		var accepted *client.Operation
		var err error
		switch op {
		case chub.OpCreate:
			stateN++
			name = "crash" + strconv.Itoa(stateN)
			_, accepted, err = c.CreateCompute(ctx(t), createReq(name, size))
			want = chub.StateRunning
		case chub.OpDelete:
			accepted, err = c.DeleteCompute(ctx(t), "", name)
		default:
			accepted, err = c.Act(ctx(t), "", name, op)
			want = map[chub.OperationName]chub.State{chub.OpStart: chub.StateRunning, chub.OpStop: chub.StateStopped}[op]
		}
		if err != nil || accepted == nil {
			t.Fatalf("round %d: %s %s: operation %v, err %v", round, op, name, accepted, err)
		}
		time.Sleep(delay)
		t.Logf("round %d: kill -9 %v into %s %s", round, delay, op, name)
		s.stop(syscall.SIGKILL)
		s.start()
		c = s.client()

		cur, err := c.Operation(ctx(t), accepted.StatusURL)
		if err != nil {
			t.Fatalf("round %d: the operation of %s %s after the crash: %v", round, op, name, err)
		}
		if _, err := c.Wait(ctx(t), cur, "", "", nil); err != nil {
			t.Fatalf("round %d: %s %s after a kill -9 %v into it: %v", round, op, name, delay, err)
		}
		if op == chub.OpDelete {
			if _, err := c.GetCompute(ctx(t), "", name); err == nil {
				t.Fatalf("round %d: %s still exists after its delete converged", round, name)
			}
			crashNoTrace(t, s, round, id)
			exists, id = false, ""
			continue
		}
		exists = true
		// The operation's end and the state agree, and stay so.
		if got := state(t, c, name); got != want {
			t.Fatalf("round %d: after a kill -9 %v into %s, %s is %s; want %s", round, delay, op, name, got, want)
		}
		if want == chub.StateRunning {
			if id == "" {
				id = instanceID(t, c, name)
			}
			if out := mustRun(t, c, name, "echo alive"); out != "alive\n" {
				t.Fatalf("round %d: exec in %s after the crash: %q", round, name, out)
			}
		}
	}
	if exists {
		c := s.client()
		op, err := c.DeleteCompute(ctx(t), "", name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Wait(ctx(t), op, "", "", nil); err != nil {
			t.Fatalf("final delete of %s: %v", name, err)
		}
		crashNoTrace(t, s, rounds+1, id)
	}
}

// crashNoTrace checks, after a delete, that nothing of the instance id
// remains and that no core is counted any more.
func crashNoTrace(t *testing.T, s *server, round int, id string) {
	t.Helper()
	root := filepath.Join(s.dataDir, "runtime", "local")
	for _, dir := range []string{"state", "instances"} {
		ents, _ := os.ReadDir(filepath.Join(root, dir))
		for _, e := range ents {
			t.Errorf("round %d: after a delete %s/%s remains", round, dir, e.Name())
		}
	}
	if id != "" {
		v2, _ := filepath.Glob("/sys/fs/cgroup/chub/" + id)
		v1, _ := filepath.Glob("/sys/fs/cgroup/*/chub/" + id)
		if cgs := append(v2, v1...); len(cgs) > 0 {
			t.Errorf("round %d: cgroups of instance %s remain: %v", round, id, cgs)
		}
	}
	if id != "" {
		assertNoTrace(t, s, id)
		if p := pastaFor(filepath.Join(root, "instances", id)); len(p) > 0 {
			t.Errorf("round %d: pasta of instance %s remains: %v", round, id, p)
		}
	}
	us, err := s.client().Usages(ctx(t), "local")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.CurrentValue != 0 {
			t.Errorf("round %d: after every instance was deleted, usage of %s is %d; want 0", round, u.Name.Value, u.CurrentValue)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}
