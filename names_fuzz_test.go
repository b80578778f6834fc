package chub

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// invalidWithTarget fails t unless err is a KindInvalid *Error naming target
// (a 400 with the field the user got wrong).
func invalidWithTarget(t *testing.T, in string, err error, target string) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok || e.Kind != KindInvalid || e.Code == "" || e.Message == "" {
		t.Fatalf("%q: got %#v; want a KindInvalid *Error with a code and a message", in, err)
	}
	if target != "" && e.Target != target {
		t.Fatalf("%q: error target %q; want %q", in, e.Target, target)
	}
}

func FuzzValidateComputeName(f *testing.F) {
	for _, s := range []string{"ci1", "my-instance", "a", "ab-12", "Local", "x-y-z", "1abc", "abc_d", "ünï", strings.Repeat("a", 25), "cpu-01x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateComputeName(name)
		if err != nil {
			invalidWithTarget(t, name, err, "name")
			return
		}
		// Azure's rules, checked independently of the regular expressions.
		if len(name) < 3 || len(name) > 24 || !isLetter(name[0]) {
			t.Fatalf("accepted %q: must be 3-24 characters and start with a letter", name)
		}
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("accepted %q with the character %q", name, c)
			}
		}
		if i := strings.LastIndexByte(name, '-'); i >= 0 && i < len(name)-1 && strings.Trim(name[i+1:], "0123456789") == "" {
			t.Fatalf("accepted %q, which ends with a hyphen and digits", name)
		}
		for _, r := range reservedNames {
			if strings.EqualFold(name, r) {
				t.Fatalf("accepted the reserved name %q", name)
			}
		}
	})
}

func FuzzValidateWorkspaceName(f *testing.F) {
	for _, s := range []string{"default", "ws_1", "a-b", "ab", "_x1", strings.Repeat("w", 34), "ws\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateWorkspaceName(name)
		if err != nil {
			invalidWithTarget(t, name, err, "workspaceName")
			return
		}
		if len(name) < 3 || len(name) > 33 || strings.ContainsAny(name[:1], "_-") {
			t.Fatalf("accepted workspace name %q", name)
		}
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				t.Fatalf("accepted %q with the character %q", name, c)
			}
		}
	})
}

// FuzzISODurationRoundTrip formats a duration from its parts, parses it back
// and compares; and checks that what ParseISODuration accepts is the sum of
// its parts as written.
func FuzzISODurationRoundTrip(f *testing.F) {
	f.Add(uint32(0), uint32(0), uint32(30), uint32(0), "PT30M")
	f.Add(uint32(3), uint32(0), uint32(0), uint32(0), "P3D")
	f.Add(uint32(1), uint32(2), uint32(3), uint32(4), "p1dt2h3m4s")
	f.Add(uint32(1000000), uint32(0), uint32(0), uint32(1), "P99999999999999999999D")
	f.Fuzz(func(t *testing.T, d, h, m, s uint32, raw string) {
		in := "P"
		if d > 0 {
			in += fmt.Sprintf("%dD", d)
		}
		if h > 0 || m > 0 || s > 0 {
			in += "T"
			for _, p := range []struct {
				n    uint32
				unit string
			}{{h, "H"}, {m, "M"}, {s, "S"}} {
				if p.n > 0 {
					in += fmt.Sprintf("%d%s", p.n, p.unit)
				}
			}
		}
		got, err := ParseISODuration(in)
		if err == nil && got < 0 {
			t.Fatalf("ParseISODuration(%q) = %v: negative", in, got)
		}
		secs := uint64(d)*86400 + uint64(h)*3600 + uint64(m)*60 + uint64(s)
		if in != "P" && d <= 1e6 && h <= 1e6 && m <= 1e6 && s <= 1e6 && secs <= math.MaxInt64/uint64(time.Second) && time.Duration(secs)*time.Second <= maxISODuration {
			want := time.Duration(secs) * time.Second
			if err != nil || got != want {
				t.Fatalf("ParseISODuration(%q) = %v, %v; want %v", in, got, err, want)
			}
		} else if err == nil && (in == "P" || got < 0) {
			t.Fatalf("ParseISODuration(%q) = %v; want an error", in, got)
		}
		// Any string: an accepted one is non-negative and made only of the
		// designators.
		if v, err := ParseISODuration(raw); err == nil {
			if v < 0 || strings.Trim(strings.ToUpper(raw), "PWDTHMS0123456789.,") != "" {
				t.Fatalf("ParseISODuration(%q) = %v", raw, v)
			}
		}
	})
}

// cronBounds are the ranges of the five cron fields: minute, hour, day of
// month, month, day of week (0 and 7 are Sunday).
var cronBounds = [5][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}

// cronFieldInRange checks every number of a cron field against its bounds:
// the values and range ends of each list item; a step must be at least 1.
func cronFieldInRange(field string, lo, hi int) bool {
	for _, item := range strings.Split(field, ",") {
		base, step, hasStep := strings.Cut(item, "/")
		if hasStep {
			var n int
			if _, err := fmt.Sscanf(step, "%d", &n); err != nil || n < 1 {
				return false
			}
		}
		for _, v := range strings.Split(base, "-") {
			var n int
			if v == "*" || v == "?" || (v != "" && strings.Trim(strings.ToUpper(v), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "") {
				continue // a wildcard or a name (JAN, MON)
			}
			if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < lo || n > hi {
				return false
			}
		}
	}
	return true
}

// FuzzSchedules validates start/stop schedules, cron and recurrence: every
// error is a 400 naming a field under schedules, and what is accepted is a
// schedule that can fire (fields within their ranges, known week days).
func FuzzSchedules(f *testing.F) {
	f.Add("Stop", "Cron", "0 18 * * 1-5", "", 0, "", "")
	f.Add("start", "cron", "*/15 8-17 * * MON-FRI", "", 0, "", "")
	f.Add("Stop", "Cron", "99 99 * * *", "", 0, "", "")
	f.Add("Stop", "Cron", "0 0 32 13 8", "", 0, "", "")
	f.Add("Stop", "Cron", "*/0 * * * *", "", 0, "", "")
	f.Add("Start", "Recurrence", "", "Week", 1, "[8]", `["Monday","friday"]`)
	f.Add("Start", "Recurrence", "", "Day", 1, "[24]", `[]`)
	f.Add("Stop", "Recurrence", "", "Hour", -3, "[-1]", `["Funday"]`)
	f.Fuzz(func(t *testing.T, action, trigger, expr, freq string, interval int, hoursJSON, daysJSON string) {
		if !utf8.ValidString(action) || !utf8.ValidString(trigger) || !utf8.ValidString(expr) || !utf8.ValidString(freq) {
			return // a JSON body holds only UTF-8
		}
		var hours []int
		var days []string
		json.Unmarshal([]byte(hoursJSON), &hours)
		json.Unmarshal([]byte(daysJSON), &days)
		c := ComputeStartStopSchedule{Action: action, TriggerType: trigger}
		if expr != "" {
			c.Cron = &Cron{Expression: expr}
		}
		if freq != "" || hours != nil || days != nil {
			c.Recurrence = &Recurrence{Frequency: freq, Interval: interval, Schedule: &RecurrenceSchedule{Hours: hours, Minutes: []int{0}, WeekDays: days}}
		}
		s := InstanceSettings{VMSize: "Standard_DS1_v2", Schedules: &Schedules{ComputeStartStop: []ComputeStartStopSchedule{c}}}
		in := fmt.Sprintf("%+v", c)
		if err := s.Normalize(); err != nil {
			invalidWithTarget(t, in, err, "")
			if tg := err.(*Error).Target; !strings.HasPrefix(tg, settingsTarget+"schedules.computeStartStop[0].") {
				t.Fatalf("%s: error target %q is not a field of the schedule", in, tg)
			}
			return
		}
		got := s.Schedules.ComputeStartStop[0]
		if got.Action != "Start" && got.Action != "Stop" {
			t.Fatalf("%s: accepted action %q", in, got.Action)
		}
		switch got.TriggerType {
		case "Cron":
			fields := strings.Fields(got.Cron.Expression)
			if len(fields) != 5 {
				t.Fatalf("%s: accepted cron %q", in, got.Cron.Expression)
			}
			for i, fl := range fields {
				if !cronFieldInRange(fl, cronBounds[i][0], cronBounds[i][1]) {
					t.Fatalf("accepted cron %q: field %d (%q) is outside %d-%d", got.Cron.Expression, i+1, fl, cronBounds[i][0], cronBounds[i][1])
				}
			}
		case "Recurrence":
			r := got.Recurrence
			if r.Interval < 0 {
				t.Fatalf("%s: accepted interval %d", in, r.Interval)
			}
			for _, h := range r.Schedule.Hours {
				if h < 0 || h > 23 {
					t.Fatalf("%s: accepted hour %d", in, h)
				}
			}
			for _, d := range r.Schedule.WeekDays {
				if _, err := oneOf(d, "", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"); err != nil || d == "" || d[1:] != strings.ToLower(d[1:]) {
					t.Fatalf("%s: accepted week day %q", in, d)
				}
			}
		}
		// Normalized settings normalize to themselves.
		var again InstanceSettings
		b, _ := json.Marshal(s)
		json.Unmarshal(b, &again)
		err := again.Normalize()
		if b2, _ := json.Marshal(again); err != nil || string(b2) != string(b) {
			t.Fatalf("normalizing twice changed %s to %s (%v)", b, b2, err)
		}
	})
}

// FuzzSSHPublicKey checks the domain's adminPublicKey test: an error is a
// 400 on the key's field, an accepted key is "TYPE BASE64 [comment]" whose
// decoded blob begins with the same type.
func FuzzSSHPublicKey(f *testing.F) {
	f.Add(edKey)
	f.Add("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== me")
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5")
	f.Add("ssh-ed25519 AAAA")
	f.Add("ecdsa-sha2-nistp256 !!!")
	f.Add("ssh-dss AAAAB3NzaC1kc3MAAACBAP")
	f.Fuzz(func(t *testing.T, key string) {
		s := InstanceSettings{VMSize: "x", SSHSettings: &SSHSettings{SSHPublicAccess: "Enabled", AdminPublicKey: key}}
		if err := s.Normalize(); err != nil {
			invalidWithTarget(t, key, err, settingsTarget+"sshSettings.adminPublicKey")
			return
		}
		fl := strings.Fields(key)
		if len(fl) < 2 {
			t.Fatalf("accepted key %q without a key blob", key)
		}
		blob, err := base64.StdEncoding.DecodeString(fl[1])
		if err != nil || len(blob) < 4+len(fl[0]) || string(blob[4:4+len(fl[0])]) != fl[0] ||
			int(blob[0])<<24|int(blob[1])<<16|int(blob[2])<<8|int(blob[3]) != len(fl[0]) {
			t.Fatalf("accepted key %q whose blob does not start with its type", key)
		}
		if s.SSHSettings.AdminUserName != "azureuser" || s.SSHSettings.SSHPublicAccess != "Enabled" {
			t.Fatalf("accepted key %q but the settings are %+v", key, s.SSHSettings)
		}
	})
}

// FuzzParseCatalog reads a --vm-sizes catalog file: an accepted catalog has
// unique names ignoring case, finds each of its sizes by any spelling, and
// reads back the same from its own JSON.
func FuzzParseCatalog(f *testing.F) {
	f.Add(`{"value":[{"name":"Standard_DS1_v2","family":"standardDSv2Family","vCPUs":1,"memoryGB":3.5}]}`)
	f.Add(`[{"name":"tiny","family":"f","vCPUs":1,"memoryGB":0.5,"gpus":1,"supportedComputeTypes":["ComputeInstance"]}]`)
	f.Add(`[{"name":"a","family":"f","vCPUs":1,"memoryGB":1},{"name":"A","family":"f","vCPUs":1,"memoryGB":1}]`)
	f.Add(`[{"name":"a","family":"f","vCPUs":0,"memoryGB":1}]`)
	f.Add(`{"value":[]}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, data string) {
		c, err := ParseCatalog([]byte(data))
		if err != nil {
			if c != nil {
				t.Fatalf("ParseCatalog(%q) returned a catalog and %v", data, err)
			}
			return
		}
		sizes := c.Sizes()
		if len(sizes) == 0 {
			t.Fatalf("ParseCatalog(%q) accepted an empty catalog", data)
		}
		seen := map[string]bool{}
		for _, s := range sizes {
			if s.Name == "" || s.Family == "" || s.VCPUs < 1 || !(s.MemoryGB > 0) || s.GPUs < 0 || len(s.SupportedComputeTypes) == 0 {
				t.Fatalf("ParseCatalog(%q) accepted the size %+v", data, s)
			}
			k := strings.ToLower(s.Name)
			if seen[k] {
				t.Fatalf("ParseCatalog(%q) lists %q twice", data, s.Name)
			}
			seen[k] = true
			for _, spelling := range []string{s.Name, strings.ToUpper(s.Name), strings.ToLower(s.Name)} {
				if got, ok := c.Lookup(spelling); !ok || !reflect.DeepEqual(got, s) {
					t.Fatalf("Lookup(%q) = %+v, %v; want %+v", spelling, got, ok, s)
				}
			}
		}
		b, err := json.Marshal(map[string]any{"value": sizes})
		if err != nil {
			return // a float json cannot hold (NaN never parses, so this is unexpected but harmless)
		}
		again, err := ParseCatalog(b)
		if err != nil || !reflect.DeepEqual(again.Sizes(), sizes) {
			t.Fatalf("catalog %s did not read back: %v", b, err)
		}
	})
}
