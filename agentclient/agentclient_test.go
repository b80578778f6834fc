package agentclient

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/computehub/chub"
)

// fakeRuntime reaches one unix socket, whatever the instance.
type fakeRuntime struct {
	chub.Runtime // nil: only DialAgent is called
	sock         string
}

func (f fakeRuntime) DialAgent(ctx context.Context, id string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", f.sock)
}

// hostileAgent serves h on a unix socket, as a fake agent inside an
// instance would, and returns a client of it with short time-outs.
func hostileAgent(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &Client{Runtime: fakeRuntime{sock: sock}, CallTimeout: 2 * time.Second, HandshakeTimeout: 2 * time.Second}
}

// bounded runs f and fails unless it returns an error within limit having
// allocated less than maxAlloc bytes.
func bounded(t *testing.T, what string, limit time.Duration, maxAlloc uint64, f func() error) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("%s: no error; want one", what)
		}
		if took > limit {
			t.Errorf("%s: took %v; want at most %v", what, took, limit)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > maxAlloc {
			t.Errorf("%s: allocated %d MiB; want at most %d MiB", what, alloc>>20, maxAlloc>>20)
		}
		t.Logf("%s: %v after %v", what, err, took.Round(time.Millisecond))
	case <-time.After(limit + 10*time.Second):
		t.Fatalf("%s: no answer after %v", what, limit+10*time.Second)
	}
}

// endless writes a JSON string that never ends.
func endless(w http.ResponseWriter, prefix string) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(prefix))
	chunk := []byte(strings.Repeat("a", 64<<10))
	for i := 0; i < 16<<10; i++ { // up to 1 GiB
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

func TestHostileAgentJSON(t *testing.T) {
	const mib = 1 << 20
	t.Run("huge body", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) { endless(w, `{"kind":"`) })
		bounded(t, "a 1 GiB activity answer", 5*time.Second, 32*mib, func() error {
			_, err := c.Observe(context.Background(), "x")
			return err
		})
	})
	t.Run("huge terminal list", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) { endless(w, `[{"id":"`) })
		bounded(t, "a 1 GiB list", 5*time.Second, 32*mib, func() error {
			var out []map[string]any
			return c.Get(context.Background(), "x", "/v1/terminals", &out)
		})
	})
	t.Run("never answers", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		bounded(t, "an agent that never answers", 4*time.Second, 8*mib, func() error {
			var out any
			return c.Get(context.Background(), "x", "/v1/activity", &out)
		})
	})
	t.Run("trickles its answer", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"kind":"`))
			for r.Context().Err() == nil {
				w.Write([]byte("a"))
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		})
		bounded(t, "an agent that trickles its answer", 4*time.Second, 8*mib, func() error {
			var out any
			return c.Get(context.Background(), "x", "/v1/activity", &out)
		})
	})
	t.Run("huge header", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < 64; i++ {
				w.Header().Add("X-Junk", strings.Repeat("j", 32<<10))
			}
			w.Write([]byte("{}"))
		})
		bounded(t, "a 2 MiB header", 4*time.Second, 16*mib, func() error {
			var out any
			return c.Get(context.Background(), "x", "/v1/activity", &out)
		})
	})
}

func TestHostileAgentWebsocket(t *testing.T) {
	const mib = 1 << 20
	t.Run("huge message", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) {
			conn, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer conn.CloseNow()
			conn.Write(r.Context(), websocket.MessageBinary, make([]byte, 256<<20))
		})
		ws, err := c.Websocket(context.Background(), "x", "/v1/exec")
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		bounded(t, "a 256 MiB websocket message", 5*time.Second, 16*mib, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _, err := ws.Read(ctx)
			return err
		})
	})
	t.Run("frames of the real size pass", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) {
			conn, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer conn.CloseNow()
			conn.Write(r.Context(), websocket.MessageBinary, make([]byte, 32<<10))
			conn.Close(websocket.StatusNormalClosure, "")
		})
		ws, err := c.Websocket(context.Background(), "x", "/v1/exec")
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		if _, msg, err := ws.Read(context.Background()); err != nil || len(msg) != 32<<10 {
			t.Fatalf("a 32 KiB message: %d bytes, %v", len(msg), err)
		}
	})
	t.Run("never answers the handshake", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		bounded(t, "a handshake never answered", 4*time.Second, 8*mib, func() error {
			_, err := c.Websocket(context.Background(), "x", "/v1/exec")
			return err
		})
		// The tunnel's dial has no deadline of its own from its caller.
		bounded(t, "a tunnel handshake never answered", 4*time.Second, 8*mib, func() error {
			_, err := c.DialTCP(context.Background(), "x", 8888)
			return err
		})
	})
}

func TestHostileAgentObserve(t *testing.T) {
	for _, tc := range []struct{ name, activity, apps string }{
		{"unknown application", `{}`, `{"available":["jupyterlab","../../etc"]}`},
		{"too many applications", `{}`, `{"available":[` + strings.Repeat(`"jupyterlab",`, 1000) + `"jupyterlab"]}`},
		{"long activity kind", `{"kind":"` + strings.Repeat("k", 500) + `"}`, `{}`},
		{"odd activity kind", `{"kind":"<script>"}`, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/apps" {
					w.Write([]byte(tc.apps))
					return
				}
				w.Write([]byte(tc.activity))
			})
			if obs, err := c.Observe(context.Background(), "x"); err == nil {
				t.Fatalf("Observe accepted %+v", obs)
			}
		})
	}
	t.Run("honest agent", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/apps" {
				w.Write([]byte(`{"available":["jupyterlab","vscode"]}`))
				return
			}
			w.Write([]byte(`{"lastActivity":"2026-01-02T03:04:05Z","kind":"terminal"}`))
		})
		obs, err := c.Observe(context.Background(), "x")
		if err != nil || len(obs.Applications) != 2 || obs.ActivityKind != "terminal" {
			t.Fatalf("Observe = %+v, %v", obs, err)
		}
	})
}
