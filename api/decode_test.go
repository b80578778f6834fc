package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/computehub/chub"
)

func TestDecodeNamesTheField(t *testing.T) {
	cases := []struct {
		body, code, target string
	}{
		{`{"properties":{"properties":{"vmSize":1}}}`, "InvalidRequestContent", "properties.properties.vmSize"},
		{`{"tags":{"a":1}}`, "InvalidRequestContent", "tags"},
		{`{"properties":{"properties":{"sshSettings":"on"}}}`, "InvalidRequestContent", "properties.properties.sshSettings"},
		{`{"properties":`, "InvalidRequestContent", ""},
		{``, "InvalidRequestContent", ""},
		{`[1,2]`, "InvalidRequestContent", ""},
	}
	for _, tc := range cases {
		var b computeBody
		err := decode(httptest.NewRequest("PUT", "/", strings.NewReader(tc.body)), &b)
		e, ok := err.(*chub.Error)
		if !ok || e.Kind != chub.KindInvalid || e.Code != tc.code || e.Target != tc.target {
			t.Errorf("decode(%q) = %#v; want code %s target %q", tc.body, err, tc.code, tc.target)
		}
	}
}

func TestAPIVersions(t *testing.T) {
	for v, ok := range map[string]bool{"2025-06-01": true, "2018-03-01-preview": true, "2023-04-01": true, "2024-10-01-preview": true,
		"2018-02-01": false, "2026-01-01": false, "latest": false, "": false} {
		r := httptest.NewRequest("GET", "/x?api-version="+v, nil)
		if err := checkAPIVersion(r); (err == nil) != ok {
			t.Errorf("api-version %q: %v; want ok=%v", v, err, ok)
		}
	}
}

func FuzzDecodeCompute(f *testing.F) {
	f.Add(`{"location":"local","tags":{"a":"b"},"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS1_v2"}}}`)
	f.Add(`{"properties":{"properties":{"schedules":{"computeStartStop":[{"action":"Stop","cron":{"expression":"0 18 * * *"}}]}}}}`)
	f.Add(`{"properties":{"properties":{"customServices":[{"name":"x","endpoints":[{"target":8080}]}]}}}`)
	f.Fuzz(func(t *testing.T, body string) {
		var b computeBody
		err := decodeJSON([]byte(body), &b)
		if err != nil {
			if e, ok := err.(*chub.Error); !ok || e.Kind != chub.KindInvalid {
				t.Fatalf("decode(%q) = %#v; want a KindInvalid *chub.Error", body, err)
			}
			return
		}
		if b.Properties != nil && b.Properties.Properties != nil {
			if err := b.Properties.Properties.Normalize(); err != nil && chub.ErrorKind(err) != chub.KindInvalid {
				t.Fatalf("Normalize after decode(%q) = %v", body, err)
			}
		}
	})
}
