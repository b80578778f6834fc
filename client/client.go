// Package client is a Go client of ComputeHub's API: workspaces, compute
// instances and their operations (with polling), users, tokens and exec.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/computehub/chub"
)

// APIVersion is the api-version the client sends.
const APIVersion = "2025-06-01"

// Config locates the server and the caller's workspace.
type Config struct {
	Server        string // https://host:port
	Token         string
	CACert        string // PEM file of a CA to trust besides the system's
	Subscription  string
	ResourceGroup string
	Workspace     string
}

// Client calls the API.
type Client struct {
	cfg  Config
	http *http.Client
	tls  *tls.Config
}

// New makes a client.
func New(cfg Config) (*Client, error) {
	if cfg.Server == "" {
		return nil, fmt.Errorf("no server configured: run 'chub login --server https://HOST:8443 --token-file TOKEN_FILE' or set CHUB_SERVER")
	}
	u, err := url.Parse(cfg.Server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server %q is not a URL such as https://127.0.0.1:8443", cfg.Server)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("server %q must use https: tokens are never sent in the clear", cfg.Server)
	}
	cfg.Server = strings.TrimRight(cfg.Server, "/")
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", cfg.CACert)
		}
		tc.RootCAs = pool
	}
	if cfg.Subscription == "" {
		cfg.Subscription = "00000000-0000-0000-0000-000000000000"
	}
	if cfg.ResourceGroup == "" {
		cfg.ResourceGroup = "default"
	}
	if cfg.Workspace == "" {
		cfg.Workspace = "default"
	}
	tr := &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second}
	return &Client{cfg: cfg, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}, tls: tc}, nil
}

// Config returns the client's configuration.
func (c *Client) Config() Config { return c.cfg }

// Error is an error answered by the server, in Azure's envelope.
type Error struct {
	StatusCode int
	Code       string `json:"code"`
	Message    string `json:"message"`
	Target     string `json:"target"`
}

func (e *Error) Error() string {
	if e.Target != "" {
		return fmt.Sprintf("%s (%s, target %s)", e.Message, e.Code, e.Target)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	e, ok := err.(*Error)
	return ok && e.StatusCode == http.StatusNotFound
}

func (c *Client) workspacePath(ws string) string {
	if ws == "" {
		ws = c.cfg.Workspace
	}
	return "/subscriptions/" + c.cfg.Subscription + "/resourceGroups/" + c.cfg.ResourceGroup + chub.ProviderPath + "/workspaces/" + url.PathEscape(ws)
}

func (c *Client) locationPath(loc string) string {
	return "/subscriptions/" + c.cfg.Subscription + chub.ProviderPath + "/locations/" + url.PathEscape(loc)
}

func withVersion(path string) string {
	if strings.Contains(path, "api-version=") {
		return path
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "api-version=" + APIVersion
}

// do sends a request; body (if any) is JSON-encoded; out (if any) receives
// the JSON answer. It returns the response headers and status.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	target := path
	if !strings.HasPrefix(path, "https://") {
		target = c.cfg.Server + path
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("User-Agent", "chub-cli")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, c.cfg.Server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		return resp, parseError(resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return resp, nil
}

func parseError(status int, data []byte) error {
	var env struct {
		Error Error `json:"error"`
	}
	if json.Unmarshal(data, &env) != nil || env.Error.Code == "" {
		return &Error{StatusCode: status, Code: http.StatusText(status), Message: strings.TrimSpace(string(data))}
	}
	env.Error.StatusCode = status
	return &env.Error
}

func decodeErrorResponse(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return parseError(resp.StatusCode, data)
}
