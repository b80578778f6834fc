package chub

import (
	"fmt"
	"strconv"
	"strings"
)

// CronSpec is a parsed five-field cron expression (NCrontab's format, which
// Azure's compute schedules use): bit n of a field is set when the
// schedule fires at value n of it.
type CronSpec struct {
	Minute, Hour, Day, Month, Weekday uint64
}

type cronField struct {
	name   string
	lo, hi int
	names  []string // names of lo, lo+1, ... (months, week days)
}

var cronFields = [5]cronField{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{"day of week", 0, 7, []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}}, // 0 and 7 are Sunday
}

// ParseCron parses "MINUTE HOUR DAY MONTH WEEKDAY": each field is *, a
// value, a range A-B, or a comma list of them, each optionally with a step
// /N; months and week days may be named (JAN-DEC, SUN-SAT). Every value
// must lie in its field's range (minute 0-59, hour 0-23, day 1-31,
// month 1-12, week day 0-7).
func ParseCron(expr string) (*CronSpec, error) {
	fs := strings.Fields(expr)
	if len(fs) != 5 {
		return nil, fmt.Errorf("%q has %d fields; a cron expression has five (minute hour day month weekday), such as \"0 18 * * 1-5\"", expr, len(fs))
	}
	var bits [5]uint64
	for i, f := range fs {
		b, err := cronFields[i].parse(f)
		if err != nil {
			return nil, fmt.Errorf("cron expression %q: %s field %q: %v", expr, cronFields[i].name, f, err)
		}
		bits[i] = b
	}
	if bits[4]&(1<<7) != 0 {
		bits[4] = bits[4]&^(1<<7) | 1 // 7 is Sunday, as 0
	}
	return &CronSpec{Minute: bits[0], Hour: bits[1], Day: bits[2], Month: bits[3], Weekday: bits[4]}, nil
}

func (c cronField) parse(field string) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(field, ",") {
		base, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > c.hi-c.lo+1 {
				return 0, fmt.Errorf("the step %q must be a number from 1 to %d", stepText, c.hi-c.lo+1)
			}
			step = n
		}
		lo, hi := c.lo, c.hi
		switch a, b, isRange := strings.Cut(base, "-"); {
		case base == "*":
		case isRange:
			var err error
			if lo, err = c.value(a); err != nil {
				return 0, err
			}
			if hi, err = c.value(b); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("the range %s runs backwards", base)
			}
		default:
			v, err := c.value(base)
			if err != nil {
				return 0, err
			}
			lo = v
			if !hasStep {
				hi = v // a value alone; with a step, from the value to the end
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

func (c cronField) value(s string) (int, error) {
	for i, n := range c.names {
		if strings.EqualFold(s, n) {
			return c.lo + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || s == "" || s[0] == '+' || s[0] == '-' {
		if c.names != nil {
			return 0, fmt.Errorf("%q is neither a number from %d to %d nor a name (%s-%s)", s, c.lo, c.hi, c.names[0], c.names[len(c.names)-1])
		}
		return 0, fmt.Errorf("%q is not a number from %d to %d", s, c.lo, c.hi)
	}
	if v < c.lo || v > c.hi {
		return 0, fmt.Errorf("%d is outside %d-%d", v, c.lo, c.hi)
	}
	return v, nil
}
