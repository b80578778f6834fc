package cli

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

func TestShellJoin(t *testing.T) {
	cases := []struct {
		words []string
		want  string
	}{
		{[]string{"echo", "hi"}, "echo hi"},
		{[]string{"python", "train.py", "--lr=0.1", "a/b.c", "x:y,z@w%+"}, "python train.py --lr=0.1 a/b.c x:y,z@w%+"},
		{[]string{"echo", "a b"}, "echo 'a b'"},
		{[]string{"echo", ""}, "echo ''"},
		{[]string{"echo", "it's"}, `echo 'it'"'"'s'`},
		{[]string{"echo", "$HOME"}, "echo '$HOME'"},
		{[]string{"echo", "a;b", "c|d", "e&&f", "*", "~"}, "echo 'a;b' 'c|d' 'e&&f' '*' '~'"},
		{[]string{"--lr", "${{inputs.lr}}"}, "--lr ${{inputs.lr}}"},
		{[]string{"--out=${{outputs.model}}/x"}, "--out=${{outputs.model}}/x"},
		{[]string{"${{inputs.a}} b"}, "'${{inputs.a}} b'"},
		{[]string{"${{other.x}}"}, "'${{other.x}}'"},
		{[]string{"line\nbreak"}, "'line\nbreak'"},
	}
	for _, c := range cases {
		if got := shellJoin(c.words); got != c.want {
			t.Errorf("shellJoin(%q): got %q; want %q", c.words, got, c.want)
		}
	}
}

// TestShellJoinRoundTrip checks that bash reads the joined line back as
// exactly the words.
func TestShellJoinRoundTrip(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed for this test: %v", err)
	}
	words := []string{"a b", "it's", "$HOME", "`id`", "\"q\"", "back\\slash", "new\nline", "", "*", "-n", "ünï", "a'b'c"}
	line := shellJoin(words)
	out, err := exec.Command(bash, "-c", `printf '%s\0' `+line).Output()
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if strings.Join(got, "|") != strings.Join(words, "|") || len(got) != len(words) {
		t.Errorf("bash read %q back as %q; want %q", line, got, words)
	}
}

func TestNewJobName(t *testing.T) {
	for i := 0; i < 300; i++ {
		seed := bytes.Repeat([]byte{byte(i), byte(i * 7)}, 3)
		n, err := newJobName(bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		if !chub.JobNamePattern.MatchString(n) || strings.Count(n, "_") != 2 {
			t.Fatalf("newJobName: got %q; want adjective_noun_hex matching %s", n, chub.JobNamePattern)
		}
	}
	if _, err := newJobName(bytes.NewReader(nil)); err == nil {
		t.Errorf("newJobName without randomness: got no error")
	}
	a, _ := randomJobName()
	b, _ := randomJobName()
	if a == b {
		t.Errorf("two random names: both %q", a)
	}
}

func TestIsoDuration(t *testing.T) {
	cases := map[time.Duration]string{time.Second: "PT1S", 10 * time.Minute: "PT600S", 1500 * time.Millisecond: "PT2S", 25 * time.Hour: "PT90000S"}
	for d, want := range cases {
		if got := isoDuration(d); got != want {
			t.Errorf("isoDuration(%v): got %s; want %s", d, got, want)
		}
	}
}

func TestJobExitCode(t *testing.T) {
	code := func(n int) *int { return &n }
	failed := &chub.ErrorDetail{Code: "JobFailed"}
	timeout := &chub.ErrorDetail{Code: "JobTimeout"}
	cases := []struct {
		status chub.JobStatus
		exit   *int
		err    *chub.ErrorDetail
		want   int
	}{
		{chub.JobCompleted, code(0), nil, 0},
		{chub.JobFailed, code(3), failed, 3},
		{chub.JobFailed, code(3), nil, 3},
		{chub.JobFailed, code(255), failed, 255},
		{chub.JobFailed, code(256), failed, 1},
		{chub.JobFailed, code(-1), failed, 1},
		{chub.JobFailed, nil, nil, 1},
		{chub.JobFailed, code(0), failed, 1},
		{chub.JobFailed, code(143), timeout, 1},
		{chub.JobFailed, nil, &chub.ErrorDetail{Code: "InstanceStopped"}, 1},
		{chub.JobCanceled, nil, nil, 130},
		{chub.JobCanceled, code(143), nil, 130},
	}
	for _, c := range cases {
		j := &client.Job{Properties: client.JobProperties{Status: c.status, ExitCode: c.exit, Error: c.err}}
		if got := jobExitCode(j); got != c.want {
			t.Errorf("jobExitCode(%s, %v, %v): got %d; want %d", c.status, c.exit, c.err, got, c.want)
		}
	}
}

func TestJobTableFits100Columns(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	start, end := now.Add(-3*time.Hour), now.Add(-time.Minute)
	created := start.Add(-time.Second)
	long := strings.Repeat("x", 200)
	js := []client.Job{
		{Name: long, SystemData: &client.SystemData{CreatedAt: &created}, Properties: client.JobProperties{
			Status: chub.JobCancelRequested, ComputeID: "/subscriptions/s/computes/" + strings.Repeat("c", 24), DisplayName: long, StartTime: &start}},
		{Name: "calm_pasta_1a2b3c4d", Properties: client.JobProperties{Status: chub.JobCompleted, ComputeID: "/x/computes/ci1", StartTime: &start, EndTime: &end}},
		{Name: "q", Properties: client.JobProperties{Status: chub.JobQueued, DisplayName: "multi\nline"}},
	}
	var b bytes.Buffer
	if err := writeJobTable(&b, js, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines; want 4:\n%s", len(lines), b.String())
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > 100 {
			t.Errorf("line of %d columns; want at most 100: %q", n, l)
		}
	}
	if !strings.Contains(lines[2], "2h59m") || !strings.Contains(lines[1], "3h00m") {
		t.Errorf("durations: got\n%s\nwant 3h00m (running) and 2h59m (ended)", b.String())
	}
}

func TestParseTimeout(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true}, {"10m", 10 * time.Minute, true}, {"2d", 48 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true}, {"soon", 0, false}, {"d", 0, false}, {"1dx", 0, false}, {"", 0, false},
	}
	for _, c := range cases {
		got, err := parseTimeout(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("parseTimeout(%q): got %v, %v; want %v (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}
