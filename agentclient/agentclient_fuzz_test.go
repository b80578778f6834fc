package agentclient

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/apps"
)

// pipeRuntime answers each agent call with the next raw HTTP response of
// its list (the connection is closed after it), as an agent under the
// control of the instance's root could.
type pipeRuntime struct {
	chub.Runtime // nil: only DialAgent is called
	answers      chan string
}

func (p pipeRuntime) DialAgent(ctx context.Context, id string) (net.Conn, error) {
	server, client := net.Pipe()
	var answer string
	select {
	case answer = <-p.answers:
	default:
		answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
	}
	go func() {
		defer server.Close()
		server.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := http.ReadRequest(bufio.NewReader(server)); err != nil {
			return
		}
		server.Write([]byte(answer))
	}()
	return client, nil
}

const okJSON = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"

// FuzzObserve feeds Observe (which the reconciler calls on every running
// instance) the agent's answers to /v1/activity and /v1/apps: it returns
// within its time-out, and what it records is an activity kind of the
// agreed shape, a time not ahead of now, and catalog applications only.
func FuzzObserve(f *testing.F) {
	f.Add(`{"lastActivity":"2026-12-01T10:00:00Z","kind":"terminal"}`, `{"available":["jupyter","vscode"]}`, false)
	f.Add(`{"lastActivity":"2999-01-01T00:00:00Z","kind":"x"}`, `{"available":["../../etc","jupyter"]}`, false)
	f.Add(`{"kind":"<script>"}`, `{"available":[]}`, false)
	f.Add(`{"lastActivity":null}`, `{"available":"jupyter"}`, false)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n{", `{}`, true)
	f.Add("HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n\r\n", `{}`, true)
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", `{}`, true)
	f.Add("garbage", "", true)
	f.Fuzz(func(t *testing.T, activity, offered string, raw bool) {
		rt := pipeRuntime{answers: make(chan string, 2)}
		if raw {
			rt.answers <- activity
		} else {
			rt.answers <- okJSON + activity
		}
		rt.answers <- okJSON + offered
		c := &Client{Runtime: rt, CallTimeout: 2 * time.Second, HandshakeTimeout: 2 * time.Second}
		start := time.Now()
		obs, err := c.Observe(context.Background(), "i1")
		if d := time.Since(start); d > 6*time.Second {
			t.Fatalf("Observe took %v", d)
		}
		if err != nil {
			return
		}
		if obs.ActivityKind != "" && !activityKind.MatchString(obs.ActivityKind) {
			t.Fatalf("recorded the activity kind %q", obs.ActivityKind)
		}
		if obs.LastActivity != nil && obs.LastActivity.After(time.Now().Add(time.Minute)) {
			t.Fatalf("recorded activity ahead of now: %v", obs.LastActivity)
		}
		if len(obs.Applications) > MaxApplications {
			t.Fatalf("recorded %d applications", len(obs.Applications))
		}
		for _, a := range obs.Applications {
			if _, ok := apps.Lookup(a); !ok || strings.ContainsAny(a, "/.") {
				t.Fatalf("recorded the application %q, not one of the catalog", a)
			}
		}
	})
}
