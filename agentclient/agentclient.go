// Package agentclient is the server's client of the agent inside an
// instance, reached through the runtime (chub.Runtime.DialAgent): websocket
// streams (exec, terminals), TCP tunnels to ports inside the instance, and
// JSON calls.
package agentclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/computehub/chub"
)

// Client talks to the agents of one runtime.
type Client struct {
	Runtime chub.Runtime
}

func (c *Client) httpClient(id string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return c.Runtime.DialAgent(ctx, id) },
		// One connection per request: agents are local and requests rare.
		DisableKeepAlives: true,
	}}
}

// Websocket opens a websocket to path (e.g. /v1/exec) on the agent of instance id.
func (c *Client) Websocket(ctx context.Context, id, path string) (*websocket.Conn, error) {
	conn, resp, err := websocket.Dial(ctx, "ws://agent"+path, &websocket.DialOptions{HTTPClient: c.httpClient(id)})
	if err != nil {
		if resp != nil && resp.Body != nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return nil, fmt.Errorf("agent %s: %s: %s", path, resp.Status, msg)
		}
		return nil, fmt.Errorf("agent %s: %w", path, err)
	}
	conn.SetReadLimit(-1)
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
	resp, err := c.httpClient(id).Do(req)
	if err != nil {
		return fmt.Errorf("agent %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("agent %s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
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
	obs.LastActivity, obs.ActivityKind = act.LastActivity, act.Kind
	// The applications whose program the instance has. An agent older than
	// applications does not know the call: it offers none.
	var apps struct {
		Available []string `json:"available"`
	}
	if err := c.Get(ctx, id, "/v1/apps", &apps); err == nil && len(apps.Available) > 0 {
		obs.Applications = apps.Available // nil when none, as the store gives it back
	}
	return obs, nil
}
