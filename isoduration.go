package chub

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxISODuration bounds what ParseISODuration returns (any limit a caller
// checks is far below it), so that no sum overflows.
const maxISODuration = 100 * 365 * 24 * time.Hour

// ParseISODuration parses an ISO 8601 duration as Azure's TimeSpan values are
// sent: P[nW][nD][T[nH][nM][n[.f]S]], e.g. PT10S, PT1H30M, P1D, P1DT12H,
// PT0.5S. Years and months have no fixed length and are refused, as are
// signs, empty parts ("P", "PT") and values over 100 years.
func ParseISODuration(s string) (time.Duration, error) {
	bad := func(why string) error {
		return fmt.Errorf("%q is not an ISO 8601 duration such as PT30M, PT1H30M or P1D: %s", s, why)
	}
	if len(s) > 64 {
		return 0, fmt.Errorf("the duration is %d characters long; an ISO 8601 duration such as PT1H30M is far shorter", len(s))
	}
	u := strings.ToUpper(s)
	if !strings.HasPrefix(u, "P") {
		return 0, bad("it must start with P")
	}
	u = u[1:]
	var total time.Duration
	inTime, any, anyTime := false, false, false
	order := ""
	for len(u) > 0 {
		if u[0] == 'T' {
			if inTime {
				return 0, bad("T appears twice")
			}
			inTime = true
			order = ""
			u = u[1:]
			continue
		}
		i := 0
		for i < len(u) && (u[i] >= '0' && u[i] <= '9' || u[i] == '.' || u[i] == ',') {
			i++
		}
		if i == 0 {
			return 0, bad(fmt.Sprintf("expected a number at %q", u))
		}
		if i == len(u) {
			return 0, bad(fmt.Sprintf("the number %s has no unit", u))
		}
		num, unit := strings.ReplaceAll(u[:i], ",", "."), u[i]
		u = u[i+1:]
		var scale time.Duration
		units := "WD"
		if inTime {
			units = "HMS"
		}
		switch {
		case !inTime && unit == 'W':
			scale = 7 * 24 * time.Hour
		case !inTime && unit == 'D':
			scale = 24 * time.Hour
		case inTime && unit == 'H':
			scale = time.Hour
		case inTime && unit == 'M':
			scale = time.Minute
		case inTime && unit == 'S':
			scale = time.Second
		case !inTime && (unit == 'Y' || unit == 'M'):
			return 0, bad("years and months have no fixed length; use days (P30D)")
		case !inTime && (unit == 'H' || unit == 'S'):
			return 0, bad("hours, minutes and seconds go after T (PT1H)")
		default:
			return 0, bad(fmt.Sprintf("%q is not a unit here (use %s)", string(unit), units))
		}
		if strings.ContainsRune(order, rune(unit)) {
			return 0, bad(fmt.Sprintf("%c appears twice", unit))
		}
		// Units must come in order (D after W, M after H, S after M).
		for _, seen := range order {
			if strings.IndexByte(units, byte(seen)) > strings.IndexByte(units, unit) {
				return 0, bad(fmt.Sprintf("%c must come before %c", unit, seen))
			}
		}
		order += string(unit)
		d, err := isoScaled(num, scale, unit == 'S' && inTime)
		if err != nil {
			return 0, bad(err.Error())
		}
		if total += d; total > maxISODuration {
			return 0, fmt.Errorf("%q is longer than 100 years", s)
		}
		any = true
		if inTime {
			anyTime = true
		}
	}
	if !any {
		return 0, bad("it has no parts")
	}
	if inTime && !anyTime {
		return 0, bad("T must be followed by hours, minutes or seconds")
	}
	return total, nil
}

// scaled is num (digits, with a fraction only when fraction is allowed)
// times scale, bounded by maxISODuration.
func isoScaled(num string, scale time.Duration, fraction bool) (time.Duration, error) {
	whole, frac, hasFrac := strings.Cut(num, ".")
	if whole == "" || strings.Contains(frac, ".") || hasFrac && frac == "" {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	if hasFrac && !fraction {
		return 0, fmt.Errorf("only seconds may have a fraction (PT1.5S), got %s", num)
	}
	if len(frac) > 9 {
		return 0, fmt.Errorf("%s has more than 9 decimals (nanoseconds)", num)
	}
	w, err := strconv.ParseUint(whole, 10, 63)
	if err != nil || time.Duration(w) > maxISODuration/scale {
		return 0, fmt.Errorf("%s is too large", num)
	}
	d := time.Duration(w) * scale
	if frac != "" {
		f, _ := strconv.ParseUint((frac + "000000000")[:9], 10, 63)
		d += time.Duration(f)
	}
	return d, nil
}

// FormatISODuration writes d as an ISO 8601 duration (the inverse of
// ParseISODuration): P1D, PT1H30M, PT10S, PT0.5S; 0 is PT0S.
func FormatISODuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("P")
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d == 0 {
		return b.String()
	}
	b.WriteString("T")
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if d > 0 {
		sec := d / time.Second
		ns := d - sec*time.Second
		if ns == 0 {
			fmt.Fprintf(&b, "%dS", sec)
		} else {
			fmt.Fprintf(&b, "%d.%s", sec, strings.TrimRight(fmt.Sprintf("%09d", ns), "0"))
			b.WriteString("S")
		}
	}
	return b.String()
}
