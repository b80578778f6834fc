package api

import (
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestAPIVersionList checks the list of published versions and the 400s
// for real dates that are not versions and for dates that are not real.
func TestAPIVersionList(t *testing.T) {
	if !sort.StringsAreSorted(APIVersions) || APIVersions[0] != MinAPIVersion || APIVersions[len(APIVersions)-1] != MaxAPIVersion {
		t.Fatalf("APIVersions must run sorted from %s to %s", MinAPIVersion, MaxAPIVersion)
	}
	for _, v := range APIVersions {
		d, _, _ := strings.Cut(v, "-preview")
		if _, err := time.Parse("2006-01-02", d); err != nil || v != strings.ToLower(v) {
			t.Errorf("%q is not a date with an optional -preview", v)
		}
	}
	for v, want := range map[string]string{
		"2024-04-01": "", "2025-06-01": "", "2018-03-01-PREVIEW": "",
		"2024-13-45": "not a real date", "2024-02-30": "not a real date", "2024-1-1": "not a date",
		"2024-01-02": "not a supported version", "2025-06-01-preview": "not a supported version", "latest": "not a date",
	} {
		err := checkAPIVersion(httptest.NewRequest("GET", "/x?api-version="+v, nil))
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", v, err)
			}
			continue
		}
		e, ok := err.(*chub.Error)
		if !ok || e.Code != "InvalidApiVersionParameter" || e.Target != "api-version" || !strings.Contains(e.Message, want) || !strings.Contains(e.Message, "2022-10-01") {
			t.Errorf("%s: %v; want InvalidApiVersionParameter saying %q and listing the versions", v, err, want)
		}
	}
}
