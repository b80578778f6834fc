package agent

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/computehub/chub/streamproto"
)

type activityAnswer struct {
	LastActivity *time.Time `json:"lastActivity"`
	Kind         string     `json:"kind"`
}

func getActivity(t *testing.T, hc *http.Client) activityAnswer {
	t.Helper()
	resp, err := hc.Get("http://agent/v1/activity")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a activityAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestActivity: exec, terminal input and tunnel traffic each count as
// activity, and GET /v1/activity reports the last one.
func TestActivity(t *testing.T) {
	_, hc := termAgent(t, time.Minute)
	if a := getActivity(t, hc); a.LastActivity != nil || a.Kind != "" {
		t.Fatalf("activity of a fresh agent: %+v; want none", a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	since := time.Now().Add(-time.Second)
	expect := func(kind string) {
		t.Helper()
		waitUntil(t, 5*time.Second, "activity "+kind, func() bool {
			a := getActivity(t, hc)
			return a.Kind == kind && a.LastActivity != nil && a.LastActivity.After(since)
		})
		since = time.Now()
	}

	conn, _, err := websocket.Dial(ctx, "ws://agent/v1/exec", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := streamproto.Exec(ctx, conn, streamproto.ExecRequest{Command: []string{"true"}}, nil, nil, nil, nil); err != nil || code != 0 {
		t.Fatalf("exec true: %d, %v", code, err)
	}
	expect("exec")

	term, scr := openTerm(t, hc, "")
	term.Write([]byte("echo typed\n"))
	scr.expect(t, "typed")
	expect("terminal")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			buf := make([]byte, 16)
			for {
				if _, err := c.Read(buf); err != nil {
					c.Close()
					return
				}
			}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	tun, _, err := websocket.Dial(ctx, "ws://agent/v1/dial?port="+strconv.Itoa(port), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.CloseNow()
	expect("dial") // opening the tunnel
	// A later request on the same tunnel is use too.
	term.Write([]byte("echo again\n"))
	expect("terminal")
	if err := tun.Write(ctx, websocket.MessageBinary, []byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	expect("dial")
	term.Write([]byte("exit\n"))
	<-scr.done
}
