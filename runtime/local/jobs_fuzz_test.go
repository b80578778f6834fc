package local

import (
	"slices"
	"strings"
	"testing"
)

func TestParseNSpid(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		ok   bool
	}{
		{"Name:\tsh\nNSpid:\t4242\t17\nNSpgid:\t1\n", []int{4242, 17}, true},
		{"NSpid:\t1\n", []int{1}, true},
		{"NSpid:\t9\t8\t7", []int{9, 8, 7}, true},
		{"Name:\tsh\n", nil, false},
		{"NSpid:\n", nil, false},
		{"NSpid:\t12\tx\n", nil, false},
		{"NSpid:\t12\t-3\n", nil, false},
		{"NSpid:\t0\n", nil, false},
	}
	for _, tt := range tests {
		got, err := parseNSpid(strings.NewReader(tt.in))
		if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("parseNSpid(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseNSpid(f *testing.F) {
	f.Add("Name:\tsh\nNSpid:\t4242\t17\n")
	f.Add("NSpid:\t1\n")
	f.Add("NSpid:")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseNSpid(strings.NewReader(s))
		if err != nil {
			return
		}
		if len(got) == 0 {
			t.Fatalf("parseNSpid(%q) = empty, nil", s)
		}
		for _, n := range got {
			if n <= 0 {
				t.Fatalf("parseNSpid(%q) = %v: a pid <= 0", s, got)
			}
		}
	})
}

func TestValidJob(t *testing.T) {
	for _, tt := range []struct {
		job string
		ok  bool
	}{
		{"0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", true},
		{"a", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"-a", false},
		{"a_b", false},
		{"a\x00", false},
		{"a\n", false},
	} {
		if err := validJob(tt.job); (err == nil) != tt.ok {
			t.Errorf("validJob(%q) = %v; want ok=%v", tt.job, err, tt.ok)
		}
	}
}
