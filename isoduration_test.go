package chub

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"PT10S", 10 * time.Second},
		{"PT1H30M", 90 * time.Minute},
		{"pt1h", time.Hour},
		{"P1D", 24 * time.Hour},
		{"P1DT12H", 36 * time.Hour},
		{"P2W", 14 * 24 * time.Hour},
		{"PT0.5S", 500 * time.Millisecond},
		{"PT1,25S", 1250 * time.Millisecond},
		{"PT90M", 90 * time.Minute},
		{"P0D", 0},
		{"PT1M30.000000001S", 90*time.Second + 1},
	} {
		got, err := ParseISODuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseISODuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "P", "PT", "1h", "T1H", "P1H", "PT1D", "P1Y", "P1M", "PT1H1H", "PT1M1H", "P1DT", "PT-1S", "-PT1S",
		"PT1.5M", "PT.5S", "PT1.S", "PT1.2.3S", "PT1.0000000001S", "P99999999999999999999D", "P40000W", "PTS", "P1D2W", "PT1HX", "P1DD"} {
		if d, err := ParseISODuration(in); err == nil {
			t.Errorf("ParseISODuration(%q) = %v; want an error", in, d)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "PT0S", 10 * time.Second: "PT10S", 90 * time.Minute: "PT1H30M", 24 * time.Hour: "P1D",
		36*time.Hour + time.Second: "P1DT12H1S", 1500 * time.Millisecond: "PT1.5S",
	} {
		if got := FormatISODuration(d); got != want {
			t.Errorf("FormatISODuration(%v) = %s; want %s", d, got, want)
		}
	}
}

// FuzzParseDuration: no input panics, every parsed duration is within
// bounds, and formatting it parses back to the same value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"PT10S", "PT1H30M", "P1DT12H", "P2W", "PT0.5S", "P", "PT", "P1Y", "PT1.2.3S", "P99999999999999999999D"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseISODuration(s)
		if err != nil {
			return
		}
		if d < 0 || d > maxISODuration {
			t.Fatalf("ParseISODuration(%q) = %v: out of bounds", s, d)
		}
		back, err := ParseISODuration(FormatISODuration(d))
		if err != nil || back != d {
			t.Fatalf("ParseISODuration(%q) = %v, formatted %q, parsed back %v, %v", s, d, FormatISODuration(d), back, err)
		}
	})
}
