package chub

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestValidateComputeName(t *testing.T) {
	cases := []struct {
		name    string
		wantErr string // substring of the message; "" for valid
	}{
		{"instance", ""},
		{"abc", ""},
		{"a-b-c", ""},
		{"dev-box1", ""},
		{"abcdefghijklmnopqrstuvwx", ""},
		{"ab", "3 to 24"},
		{"abcdefghijklmnopqrstuvwxy", "3 to 24"},
		{"1abc", "start with a letter"},
		{"-abc", "start with a letter"},
		{"ab_c", "letters, digits and hyphens"},
		{"abc-12", "hyphen followed by digits"},
		{"LOCAL", "reserved"},
		{"amlcompute", "reserved"},
		{"containerinstance", "reserved"},
		{"", "required"},
	}
	for _, tc := range cases {
		err := ValidateComputeName(tc.name)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ValidateComputeName(%q) = %v; want nil", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ValidateComputeName(%q) = %v; want an error saying %q", tc.name, err, tc.wantErr)
		case err != nil && ErrorKind(err) != KindInvalid:
			t.Errorf("ValidateComputeName(%q): kind %v; want KindInvalid", tc.name, ErrorKind(err))
		}
	}
}

func TestValidateWorkspaceName(t *testing.T) {
	for name, ok := range map[string]bool{"default": true, "ws_1-x": true, "0ws": true, "ab": false, "_ws": false, "w s": false, strings.Repeat("a", 34): false} {
		if err := ValidateWorkspaceName(name); (err == nil) != ok {
			t.Errorf("ValidateWorkspaceName(%q) = %v; want ok=%v", name, err, ok)
		}
	}
}

func TestParseISODuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"PT15M", 15 * time.Minute, true},
		{"PT120M", 2 * time.Hour, true},
		{"P3D", 72 * time.Hour, true},
		{"P1DT2H3M4S", 26*time.Hour + 3*time.Minute + 4*time.Second, true},
		{"pt1h", time.Hour, true},
		{"P", 0, false},
		{"PT", 0, false},
		{"15m", 0, false},
		{"P1W", 7 * 24 * time.Hour, true},
		{"P1Y", 0, false},
		{"", 0, false},
	}
	for _, tc := range cases {
		got, err := ParseISODuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseISODuration(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

const edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm8FJ0Bc8V5p8w8u8rJ8w1yGq3fQ1hRHVg7b0cXxW0Z user@host"

func TestNormalizeSettings(t *testing.T) {
	cases := []struct {
		name       string
		json       string
		wantTarget string // "" means valid
	}{
		{"minimal", `{"vmSize":"Standard_DS1_v2"}`, ""},
		{"ssh enabled with key", `{"vmSize":"x","sshSettings":{"sshPublicAccess":"enabled","adminPublicKey":"` + edKey + `"}}`, ""},
		{"no size", `{}`, "properties.properties.vmSize"},
		{"ssh key garbage", `{"vmSize":"x","sshSettings":{"sshPublicAccess":"Enabled","adminPublicKey":"ssh-ed25519 notbase64"}}`, "properties.properties.sshSettings.adminPublicKey"},
		{"sharing policy", `{"vmSize":"x","applicationSharingPolicy":"Public"}`, "properties.properties.applicationSharingPolicy"},
		{"assigned user without tenant", `{"vmSize":"x","personalComputeInstanceSettings":{"assignedUser":{"objectId":"u"}}}`, "properties.properties.personalComputeInstanceSettings.assignedUser.tenantId"},
		{"schedule action", `{"vmSize":"x","schedules":{"computeStartStop":[{"action":"Pause"}]}}`, "properties.properties.schedules.computeStartStop[0].action"},
		{"cron expression", `{"vmSize":"x","schedules":{"computeStartStop":[{"action":"Stop","triggerType":"Cron","cron":{"expression":"daily"}}]}}`, "properties.properties.schedules.computeStartStop[0].cron.expression"},
		{"recurrence weekday", `{"vmSize":"x","schedules":{"computeStartStop":[{"action":"Start","triggerType":"Recurrence","recurrence":{"frequency":"Week","schedule":{"weekDays":["Funday"]}}}]}}`, "properties.properties.schedules.computeStartStop[0].recurrence.schedule.weekDays"},
		{"script not base64", `{"vmSize":"x","setupScripts":{"scripts":{"creationScript":{"scriptSource":"inline","scriptData":"%%%"}}}}`, "properties.properties.setupScripts.scripts.creationScript.scriptData"},
		{"idle too long", `{"vmSize":"x","idleTimeBeforeShutdown":"P4D"}`, "properties.properties.idleTimeBeforeShutdown"},
		{"custom service port", `{"vmSize":"x","customServices":[{"name":"s","endpoints":[{"target":0}]}]}`, "properties.properties.customServices[0].endpoints[0].target"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s InstanceSettings
			if err := json.Unmarshal([]byte(tc.json), &s); err != nil {
				t.Fatal(err)
			}
			err := s.Normalize()
			if tc.wantTarget == "" {
				if err != nil {
					t.Fatalf("Normalize() = %v; want nil", err)
				}
				if s.SSHSettings.AdminUserName != "azureuser" || s.ApplicationSharingPolicy == "" {
					t.Fatalf("defaults not filled: %+v", s)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Target != tc.wantTarget || e.Kind != KindInvalid {
				t.Fatalf("Normalize() = %#v; want an invalid error with target %s", err, tc.wantTarget)
			}
		})
	}
}

func FuzzNormalizeSettings(f *testing.F) {
	f.Add(`{"vmSize":"Standard_DS1_v2","idleTimeBeforeShutdown":"PT30M"}`)
	f.Add(`{"vmSize":"x","schedules":{"computeStartStop":[{"action":"Stop","triggerType":"Cron","cron":{"expression":"0 18 * * 1-5"}}]}}`)
	f.Add(`{"vmSize":"x","sshSettings":{"sshPublicAccess":"Enabled","adminPublicKey":"` + edKey + `"}}`)
	f.Fuzz(func(t *testing.T, in string) {
		var s InstanceSettings
		if json.Unmarshal([]byte(in), &s) != nil {
			return
		}
		err := s.Normalize()
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Kind != KindInvalid || e.Target == "" {
				t.Fatalf("Normalize(%q) returned %#v; want a KindInvalid *Error with a target", in, err)
			}
			return
		}
		// A normalized value normalizes to itself.
		b, _ := json.Marshal(s)
		var again InstanceSettings
		json.Unmarshal(b, &again)
		if err := again.Normalize(); err != nil {
			t.Fatalf("re-normalizing %s failed: %v", b, err)
		}
	})
}

func TestCatalog(t *testing.T) {
	c := BuiltinCatalog()
	s, ok := c.Lookup("STANDARD_D3_V2")
	if !ok || s.Name != "Standard_D3_v2" || s.VCPUs != 4 || s.MemoryGB != 14 || s.Family != "standardDv2Family" {
		t.Fatalf("Lookup(STANDARD_D3_V2) = %+v, %v", s, ok)
	}
	if _, ok := c.Lookup("Standard_Nope"); ok {
		t.Fatal("Lookup of an unknown size succeeded")
	}
	if _, err := ParseCatalog([]byte(`{"value":[{"name":"a","family":"f","vCPUs":1,"memoryGB":1},{"name":"A","family":"f","vCPUs":1,"memoryGB":1}]}`)); err == nil {
		t.Fatal("a catalog with a duplicate name was accepted")
	}
	got, err := ParseCatalog([]byte(`[{"name":"tiny","family":"f","vCPUs":1,"memoryGB":0.5}]`))
	if err != nil || len(got.Sizes()) != 1 {
		t.Fatalf("ParseCatalog list form: %v", err)
	}
}
