// Package agentclient is the server's client of the agent inside an
// instance, reached through the runtime (chub.Runtime.DialAgent): websocket
// streams (exec, terminals), TCP tunnels to ports inside the instance, and
// JSON calls.
//
// An agent runs inside an instance whose root is the instance's user, who
// may replace it with a program of his own: the client trusts nothing it
// answers. Every read is bounded (JSON bodies, websocket messages,
// headers), every wait has a time-out, and what Observe records is
// checked.
package agentclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/computehub/chub"
	"github.com/computehub/chub/apps"
	"github.com/computehub/chub/streamproto"
)

// The bounds on what an agent answers.
const (
	// MaxJSON is the largest JSON answer read from an agent.
	MaxJSON = 1 << 20
	// MaxMessage is the largest websocket message read from an agent:
	// streams send at most streamproto.MaxMessage, tunnels copy 32 KiB
	// at a time.
	MaxMessage = 2 * streamproto.MaxMessage
	// MaxApplications is the most applications Observe records.
	MaxApplications = 64
	// DialTimeout bounds connecting to an agent's socket.
	DialTimeout = 5 * time.Second
	// HandshakeTimeout bounds the wait for a websocket's upgrade answer.
	HandshakeTimeout = 30 * time.Second
	// CallTimeout bounds a JSON call from the request to the body's end;
	// starting an application is the slowest (up to 2 minutes).
	CallTimeout    = 3 * time.Minute
	maxHeaderBytes = 64 << 10
)

// activityKind is what Observe accepts as an activity kind.
var activityKind = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// Client talks to the agents of one runtime.
type Client struct {
	Runtime chub.Runtime
	// CallTimeout and HandshakeTimeout override the package's defaults
	// when set.
	CallTimeout, HandshakeTimeout time.Duration
}

func (c *Client) timeouts() (call, handshake time.Duration) {
	call, handshake = CallTimeout, HandshakeTimeout
	if c.CallTimeout > 0 {
		call = c.CallTimeout
	}
	if c.HandshakeTimeout > 0 {
		handshake = c.HandshakeTimeout
	}
	return call, handshake
}

// httpClient reaches the agent of instance id. headerTimeout bounds the
// wait for an answer's header, total (when set) the whole call.
func (c *Client) httpClient(id string, headerTimeout, total time.Duration) *http.Client {
	return &http.Client{Timeout: total, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, DialTimeout)
			defer cancel()
			return c.Runtime.DialAgent(ctx, id)
		},
		// One connection per request: agents are local and requests rare.
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  headerTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
	},
		// An agent has nowhere to send the server.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Websocket opens a websocket to path (e.g. /v1/exec) on the agent of instance id.
func (c *Client) Websocket(ctx context.Context, id, path string) (*websocket.Conn, error) {
	_, handshake := c.timeouts()
	conn, resp, err := websocket.Dial(ctx, "ws://agent"+path, &websocket.DialOptions{HTTPClient: c.httpClient(id, handshake, 0)})
	if err != nil {
		if resp != nil && resp.Body != nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return nil, fmt.Errorf("agent %s: %s: %s", path, resp.Status, msg)
		}
		return nil, fmt.Errorf("agent %s: %w", path, err)
	}
	conn.SetReadLimit(MaxMessage)
	return conn, nil
}

// DialTCP opens a byte stream to port on the instance's loopback, carried
// by the agent: nothing of the instance is published on the host.
func (c *Client) DialTCP(ctx context.Context, id string, port int) (net.Conn, error) {
	// The tunnel lives longer than the dial's context: it ends when closed.
	conn, err := c.Websocket(context.WithoutCancel(ctx), id, "/v1/dial?port="+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	return websocket.NetConn(context.Background(), conn, websocket.MessageBinary), nil
}

// Get calls GET path on the agent and decodes its JSON answer into out.
func (c *Client) Get(ctx context.Context, id, path string, out any) error {
	return c.Do(ctx, id, http.MethodGet, path, nil, out)
}

// Do calls the agent with an optional JSON body and decodes the JSON answer.
func (c *Client) Do(ctx context.Context, id, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(json.NewEncoder(pw).Encode(body)) }()
		rd = pr
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, rd)
	if err != nil {
		return err
	}
	call, _ := c.timeouts()
	resp, err := c.httpClient(id, call, call).Do(req)
	if err != nil {
		return fmt.Errorf("agent %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &statusError{code: resp.StatusCode, err: fmt.Errorf("agent %s %s: %s: %s", method, path, resp.Status, msg)}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxJSON)).Decode(out); err != nil {
		return fmt.Errorf("agent %s %s: the answer (at most %d bytes of JSON): %w", method, path, MaxJSON, err)
	}
	return nil
}

// Query escapes a query value.
func Query(v string) string { return url.QueryEscape(v) }

// Observe asks the agent what the server should know of the instance: its
// last activity and the catalog applications it offers.
func (c *Client) Observe(ctx context.Context, id string) (chub.Observed, error) {
	var obs chub.Observed
	var act struct {
		LastActivity *time.Time `json:"lastActivity"`
		Kind         string     `json:"kind"`
	}
	if err := c.Get(ctx, id, "/v1/activity", &act); err != nil {
		return obs, err
	}
	if act.Kind != "" && !activityKind.MatchString(act.Kind) {
		return obs, fmt.Errorf("agent /v1/activity: kind %.40q is not a name of at most 32 letters", act.Kind)
	}
	if act.LastActivity != nil && act.LastActivity.After(time.Now().Add(time.Minute)) {
		// Activity cannot lie ahead: an agent that says so is not believed.
		now := time.Now().UTC()
		act.LastActivity = &now
	}
	obs.LastActivity, obs.ActivityKind = act.LastActivity, act.Kind
	// The applications whose program the instance has. An agent older than
	// applications does not know the call: it offers none.
	var offered struct {
		Available []string `json:"available"`
	}
	if err := c.Get(ctx, id, "/v1/apps", &offered); err == nil && len(offered.Available) > 0 {
		if len(offered.Available) > MaxApplications {
			return obs, fmt.Errorf("agent /v1/apps: %d applications; at most %d", len(offered.Available), MaxApplications)
		}
		for _, name := range offered.Available {
			if _, ok := apps.Lookup(name); !ok {
				return obs, fmt.Errorf("agent /v1/apps: %.70q is no application of the catalog", name)
			}
		}
		obs.Applications = offered.Available // nil when none, as the store gives it back
	}
	return obs, nil
}
