package workqueue

import "testing"

func TestQueue(t *testing.T) {
	q := New()
	q.Add("a")
	q.Add("b")
	q.Add("a") // queued already: once
	if id, ok := q.Get(); id != "a" || !ok {
		t.Fatalf("Get() = %q, %v; want a, true", id, ok)
	}
	q.Add("a") // while a worker has it: again after Done
	if id, _ := q.Get(); id != "b" {
		t.Fatalf("Get() = %q; want b (a is running)", id)
	}
	q.Done("b")
	q.Done("a")
	if id, _ := q.Get(); id != "a" {
		t.Fatalf("Get() after Done = %q; want a again", id)
	}
	q.Done("a")
	q.Close()
	q.Add("c")
	if id, ok := q.Get(); ok {
		t.Fatalf("Get() after Close = %q, true; want false", id)
	}
}
