package chub

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"
	"testing"
	"unicode/utf8"
)

// formatCronField writes a field's bits as a comma list of values.
func formatCronField(b uint64) string {
	var vs []string
	for b != 0 {
		v := bits.TrailingZeros64(b)
		vs = append(vs, fmt.Sprint(v))
		b &^= 1 << v
	}
	return strings.Join(vs, ",")
}

// FuzzParseCron: an accepted expression has, in each field, only values
// within the field's range (and at least one), every number written in it
// within range; its values written out as lists parse to the same schedule.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"0 18 * * 1-5", "*/15 8-17 * * MON-FRI", "0 0 1 JAN,jul *", "5/10 * * * 7", "0 0 * * 0-7",
		"99 99 * * *", "0 0 32 13 8", "*/0 * * * *", "1-0 * * * *", "* * * * * *", "+1 * * * *", "0-59/60 * * * *", "0 0 L * *", "0,,1 * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		spec, err := ParseCron(expr)
		if err != nil {
			if spec != nil {
				t.Fatalf("ParseCron(%q) returned a spec and %v", expr, err)
			}
			return
		}
		got := [5]uint64{spec.Minute, spec.Hour, spec.Day, spec.Month, spec.Weekday}
		for i, b := range got {
			lo, hi := cronBounds[i][0], cronBounds[i][1]
			if i == 4 {
				hi = 6 // 7 is folded into 0
			}
			if b == 0 || b>>uint(hi+1) != 0 || b&(1<<uint(lo)-1) != 0 {
				t.Fatalf("ParseCron(%q): field %d has bits %b outside %d-%d", expr, i+1, b, lo, hi)
			}
			if f := strings.Fields(expr)[i]; !cronFieldInRange(f, cronBounds[i][0], cronBounds[i][1]) {
				t.Fatalf("ParseCron(%q) accepted field %d %q", expr, i+1, f)
			}
		}
		var out []string
		for _, b := range got {
			out = append(out, formatCronField(b))
		}
		again, err := ParseCron(strings.Join(out, " "))
		if err != nil || *again != *spec {
			t.Fatalf("ParseCron(%q) = %+v; written out as %q it parses to %+v, %v", expr, *spec, strings.Join(out, " "), again, err)
		}
	})
}

// FuzzValidateTags: accepted tags keep Azure's limits; refused ones are a
// 400 on tags.
func FuzzValidateTags(f *testing.F) {
	f.Add(`{"team":"a","cost-center":"42"}`)
	f.Add(`{"":"x"}`)
	f.Add(`{"a/b":"x"}`)
	f.Add(`{"` + strings.Repeat("é", 513) + `":"v"}`)
	f.Add(`{"k":"` + strings.Repeat("v", 257) + `"}`)
	f.Fuzz(func(t *testing.T, in string) {
		var tags map[string]string
		if json.Unmarshal([]byte(in), &tags) != nil {
			return
		}
		if err := ValidateTags(tags); err != nil {
			invalidWithTarget(t, in, err, "")
			if tg := err.(*Error).Target; !strings.HasPrefix(tg, "tags") {
				t.Fatalf("ValidateTags(%q): target %q", in, tg)
			}
			return
		}
		if len(tags) > MaxTags {
			t.Fatalf("accepted %d tags", len(tags))
		}
		for k, v := range tags {
			if strings.TrimSpace(k) == "" || utf8.RuneCountInString(k) > MaxTagNameLen || strings.ContainsAny(k, "<>%&\\?/") || utf8.RuneCountInString(v) > MaxTagValueLen {
				t.Fatalf("accepted the tag %q: %q", k, v)
			}
		}
	})
}
