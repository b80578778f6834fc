package api

import (
	"fmt"
	"testing"
	"time"
)

func TestSigninThrottle(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := NewSigninThrottle()
	th.Now = func() time.Time { return now }
	fail := func(n int, name, addr string) {
		for range n {
			th.Failed(name, addr)
			now = now.Add(time.Second)
		}
	}

	// Four failures do not lock; the fifth does, for a minute, and the
	// lock holds for the right password too (Check comes first).
	fail(4, "bob", "10.0.0.1")
	if w := th.Check("bob", "10.0.0.1"); w != 0 {
		t.Fatalf("locked after 4 failures: %v", w)
	}
	fail(1, "BOB", "10.0.0.2") // names ignore case
	if w := th.Check("bob", "10.0.0.9"); w <= 58*time.Second || w > time.Minute {
		t.Fatalf("after 5 failures: wait %v; want about a minute", w)
	}
	// Other names are not affected.
	if w := th.Check("carol", "10.0.0.9"); w != 0 {
		t.Fatalf("carol locked by bob's failures: %v", w)
	}
	// The back-off doubles at each further lock-out: 2, 4, ... up to an hour.
	for _, want := range []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour} {
		now = now.Add(th.Check("bob", "x"))
		fail(5, "bob", "10.0.1.1")
		if w := th.Check("bob", "x"); w > want || w < want-5*time.Second {
			t.Fatalf("next lock-out: %v; want %v", w, want)
		}
	}
	// A success clears the name's count and back-off.
	now = now.Add(time.Hour)
	th.Succeeded("bob")
	fail(5, "bob", "10.0.2.1")
	if w := th.Check("bob", "x"); w > time.Minute {
		t.Fatalf("after a success the lock-out is %v; want a minute again", w)
	}
	// Failures older than the window are forgotten.
	fail(4, "dave", "10.0.3.1")
	now = now.Add(16 * time.Minute)
	fail(1, "dave", "10.0.3.2")
	if w := th.Check("dave", "x"); w != 0 {
		t.Fatalf("dave locked by failures of 16 minutes ago: %v", w)
	}

	// One address: 20 failures over distinct names lock every name from it,
	// a success of one name does not unlock it, other addresses are free.
	for i := range 19 {
		fail(1, "ghost"+string(rune('a'+i)), "192.0.2.7")
	}
	if w := th.Check("erin", "192.0.2.7"); w != 0 {
		t.Fatalf("address locked after 19 failures: %v", w)
	}
	fail(1, "ghostz", "192.0.2.7")
	th.Succeeded("erin")
	if w := th.Check("erin", "192.0.2.7"); w == 0 {
		t.Fatal("20 failures from one address did not lock it")
	}
	if w := th.Check("erin", "192.0.2.8"); w != 0 {
		t.Fatalf("another address locked: %v", w)
	}
}

func TestSigninThrottleMemoryIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := NewSigninThrottle()
	th.Now = func() time.Time { return now }
	for i := range maxThrottleEntries {
		th.Failed(fmt.Sprint("user", i), fmt.Sprint("addr", i))
	}
	if n := len(th.m); n > maxThrottleEntries {
		t.Fatalf("%d entries; want at most %d", n, maxThrottleEntries)
	}
	now = now.Add(2 * time.Hour) // every entry is stale now: the next sweep drops them all
	for i := range maxThrottleEntries / 10 {
		th.Failed(fmt.Sprint("new", i), "b")
	}
	if n := len(th.m); n > maxThrottleEntries/10+2 {
		t.Fatalf("%d entries after a sweep; want the stale ones gone", n)
	}
}
