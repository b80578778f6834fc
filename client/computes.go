package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/computehub/chub"
)

// CreateRequest describes a new compute instance.
type CreateRequest struct {
	Workspace   string
	Name        string
	Location    string
	Description string
	Tags        map[string]string
	Settings    chub.InstanceSettings
}

func (c *Client) computePath(ws, name string) string {
	return c.workspacePath(ws) + "/computes/" + url.PathEscape(name)
}

// CreateCompute creates an instance and returns the create operation (nil
// when the instance existed and was only updated).
func (c *Client) CreateCompute(ctx context.Context, r CreateRequest) (*Compute, *Operation, error) {
	body := Compute{Location: r.Location, Tags: r.Tags, Properties: ComputeProperties{
		ComputeType: "ComputeInstance", Description: r.Description, Properties: InstanceProperties{InstanceSettings: r.Settings},
	}}
	var out Compute
	resp, err := c.do(ctx, http.MethodPut, withVersion(c.computePath(r.Workspace, r.Name)), body, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, asyncOp(resp), nil
}

func asyncOp(resp *http.Response) *Operation {
	u := resp.Header.Get("Azure-AsyncOperation")
	if u == "" {
		return nil
	}
	return &Operation{Status: chub.OpInProgress, StatusURL: u}
}

// GetCompute fetches one instance.
func (c *Client) GetCompute(ctx context.Context, ws, name string) (*Compute, error) {
	var out Compute
	if _, err := c.do(ctx, http.MethodGet, withVersion(c.computePath(ws, name)), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListComputes lists every instance of a workspace, following nextLink.
func (c *Client) ListComputes(ctx context.Context, ws string) ([]Compute, error) {
	var all []Compute
	next := withVersion(c.workspacePath(ws) + "/computes")
	for next != "" {
		var page struct {
			Value    []Compute `json:"value"`
			NextLink string    `json:"nextLink"`
		}
		if _, err := c.do(ctx, http.MethodGet, next, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Value...)
		next = page.NextLink
	}
	return all, nil
}

// Act starts a start, stop or restart operation.
func (c *Client) Act(ctx context.Context, ws, name string, op chub.OperationName) (*Operation, error) {
	verb := map[chub.OperationName]string{chub.OpStart: "start", chub.OpStop: "stop", chub.OpRestart: "restart"}[op]
	if verb == "" {
		return nil, fmt.Errorf("unknown operation %s", op)
	}
	resp, err := c.do(ctx, http.MethodPost, withVersion(c.computePath(ws, name)+"/"+verb), nil, nil)
	if err != nil {
		return nil, err
	}
	return asyncOp(resp), nil
}

// DeleteCompute starts deleting an instance; a nil operation means it did not exist.
func (c *Client) DeleteCompute(ctx context.Context, ws, name string) (*Operation, error) {
	resp, err := c.do(ctx, http.MethodDelete, withVersion(c.computePath(ws, name)+"?underlyingResourceAction=Delete"), nil, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	return asyncOp(resp), nil
}

// Operation polls an operation's status once.
func (c *Client) Operation(ctx context.Context, statusURL string) (*Operation, error) {
	var out Operation
	if _, err := c.do(ctx, http.MethodGet, statusURL, nil, &out); err != nil {
		return nil, err
	}
	out.StatusURL = statusURL
	return &out, nil
}

// Progress receives each new state of an instance while an operation runs.
type Progress func(state chub.State, elapsed time.Duration)

// Wait polls the operation until it ends, reporting each new state of the
// instance. It returns an error carrying the server's message if the
// operation failed.
func (c *Client) Wait(ctx context.Context, op *Operation, ws, name string, progress Progress) (*Operation, error) {
	start := time.Now()
	var last chub.State
	interval := 100 * time.Millisecond
	for {
		if name != "" && progress != nil {
			if ci, err := c.GetCompute(ctx, ws, name); err == nil && ci.Properties.Properties.State != last {
				last = ci.Properties.Properties.State
				progress(last, time.Since(start))
			}
		}
		cur, err := c.Operation(ctx, op.StatusURL)
		if err != nil {
			return nil, err
		}
		if cur.Done() {
			if name != "" && progress != nil && cur.Status == chub.OpSucceeded {
				if ci, err := c.GetCompute(ctx, ws, name); err == nil && ci.Properties.Properties.State != last {
					progress(ci.Properties.Properties.State, time.Since(start))
				}
			}
			if cur.Status != chub.OpSucceeded {
				e := &Error{Code: string(cur.Status), Message: "the operation " + string(cur.Status)}
				if cur.Error != nil {
					e.Code, e.Message = cur.Error.Code, cur.Error.Message
				}
				return cur, e
			}
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		if interval < time.Second {
			interval += 100 * time.Millisecond
		}
	}
}

// VMSizes lists the sizes offered in a location.
func (c *Client) VMSizes(ctx context.Context, loc string) ([]chub.VMSize, error) {
	var out struct {
		Value []chub.VMSize `json:"value"`
	}
	_, err := c.do(ctx, http.MethodGet, withVersion(c.locationPath(loc)+"/vmSizes"), nil, &out)
	return out.Value, err
}

// Usages lists core usage in a location.
func (c *Client) Usages(ctx context.Context, loc string) ([]Usage, error) {
	var out struct {
		Value []Usage `json:"value"`
	}
	_, err := c.do(ctx, http.MethodGet, withVersion(c.locationPath(loc)+"/usages"), nil, &out)
	return out.Value, err
}

// Node is one node of a compute (an instance has one while it runs).
type Node struct {
	NodeID           string  `json:"nodeId"`
	PrivateIPAddress string  `json:"privateIpAddress"`
	PublicIPAddress  *string `json:"publicIpAddress"`
	Port             float64 `json:"port"`
	NodeState        string  `json:"nodeState"`
}

// ListNodes lists the nodes of a compute.
func (c *Client) ListNodes(ctx context.Context, ws, name string) ([]Node, error) {
	var out struct {
		Nodes []Node `json:"nodes"`
	}
	_, err := c.do(ctx, http.MethodPost, withVersion(c.computePath(ws, name)+"/listNodes"), nil, &out)
	return out.Nodes, err
}
