package chub

import (
	"strings"
	"testing"
)

func TestParseCron(t *testing.T) {
	ok := map[string]CronSpec{
		"0 18 * * 1-5":          {Minute: 1, Hour: 1 << 18, Day: bitsRange(1, 31, 1), Month: bitsRange(1, 12, 1), Weekday: bitsRange(1, 5, 1)},
		"*/15 8-17 * * MON-FRI": {Minute: 1 | 1<<15 | 1<<30 | 1<<45, Hour: bitsRange(8, 17, 1), Day: bitsRange(1, 31, 1), Month: bitsRange(1, 12, 1), Weekday: bitsRange(1, 5, 1)},
		"0,30 9 1,15 jan,Jul 7": {Minute: 1 | 1<<30, Hour: 1 << 9, Day: 1<<1 | 1<<15, Month: 1<<1 | 1<<7, Weekday: 1},
		"5/20 0-23/6 * * *":     {Minute: 1<<5 | 1<<25 | 1<<45, Hour: 1 | 1<<6 | 1<<12 | 1<<18, Day: bitsRange(1, 31, 1), Month: bitsRange(1, 12, 1), Weekday: bitsRange(0, 6, 1)},
		"59 23 31 12 0":         {Minute: 1 << 59, Hour: 1 << 23, Day: 1 << 31, Month: 1 << 12, Weekday: 1},
	}
	for expr, want := range ok {
		got, err := ParseCron(expr)
		if err != nil {
			t.Errorf("%q: %v", expr, err)
			continue
		}
		if *got != want {
			t.Errorf("%q = %+v; want %+v", expr, *got, want)
		}
	}
	bad := map[string]string{
		"99 99 * * *":    "99 is outside 0-59",
		"0 24 * * *":     "24 is outside 0-23",
		"0 0 0 * *":      "0 is outside 1-31",
		"0 0 32 * *":     "32 is outside 1-31",
		"0 0 * 13 *":     "13 is outside 1-12",
		"0 0 * * 8":      "8 is outside 0-7",
		"*/0 * * * *":    "step",
		"*/61 * * * *":   "step",
		"10-5 * * * *":   "backwards",
		"1,,2 * * * *":   "not a number",
		"-1 * * * *":     "not a number",
		"+1 * * * *":     "not a number",
		"0 0 * FOO *":    "nor a name",
		"0 0 * * FUN":    "nor a name",
		"daily":          "five",
		"0 18 * * 1-5 *": "five",
		"? * * * *":      "not a number",
		"":               "five",
	}
	for expr, msg := range bad {
		if _, err := ParseCron(expr); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v; want an error mentioning %q", expr, err, msg)
		}
	}
}

func bitsRange(lo, hi, step int) uint64 {
	var b uint64
	for v := lo; v <= hi; v += step {
		b |= 1 << v
	}
	return b
}

func TestValidateTags(t *testing.T) {
	many := map[string]string{}
	for i := range 50 {
		many[strings.Repeat("k", i+1)] = strings.Repeat("v", 256)
	}
	many[strings.Repeat("n", 512)] = "ok"
	if err := ValidateTags(many); err == nil || err.(*Error).Target != "tags" || !strings.Contains(err.Error(), "at most 50") {
		t.Fatalf("51 tags: %v", err)
	}
	delete(many, "k")
	if err := ValidateTags(many); err != nil {
		t.Fatalf("50 tags at the limits: %v", err)
	}
	for tags, target := range map[*map[string]string]string{
		{strings.Repeat("é", 513): "v"}: "tags",
		{"k": strings.Repeat("é", 257)}: "tags.k",
		{"a?b": "v"}:                    "tags",
		{" ": "v"}:                      "tags",
	} {
		err := ValidateTags(*tags)
		if err == nil || err.(*Error).Code != "InvalidTag" || err.(*Error).Target != target {
			t.Errorf("%.40v: %v; want InvalidTag on %s", *tags, err, target)
		}
	}
	if err := ValidateDescription(strings.Repeat("é", 5000), "d"); err != nil {
		t.Errorf("5000 characters: %v", err)
	}
	if err := ValidateDescription(strings.Repeat("d", 5001), "d"); err == nil || err.(*Error).Target != "d" {
		t.Errorf("5001 characters: %v", err)
	}
}
