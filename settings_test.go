package chub

import "testing"

func TestCheckMaxConcurrentJobs(t *testing.T) {
	size := VMSize{Name: "Standard_DS3_v2", VCPUs: 4}
	for n, ok := range map[int]bool{-1: false, 0: true, 1: true, 4: true, 5: false} {
		err := CheckMaxConcurrentJobs(n, size)
		if (err == nil) != ok {
			t.Errorf("CheckMaxConcurrentJobs(%d, 4 vCPUs) = %v; want ok=%v", n, err, ok)
		}
		if err != nil && (ErrorKind(err) != KindInvalid || Detail(err).Target != "properties.properties.maxConcurrentJobs" || Detail(err).Code != "InvalidMaxConcurrentJobs") {
			t.Errorf("CheckMaxConcurrentJobs(%d): %#v; want InvalidMaxConcurrentJobs at properties.properties.maxConcurrentJobs", n, err)
		}
	}
	s := InstanceSettings{VMSize: "Standard_DS3_v2", MaxConcurrentJobs: -2}
	if err := s.Normalize(); Detail(err).Code != "InvalidMaxConcurrentJobs" {
		t.Errorf("Normalize with maxConcurrentJobs -2: %v; want InvalidMaxConcurrentJobs", err)
	}
}
