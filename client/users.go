package client

import (
	"context"
	"net/http"
	"net/url"
)

// Me returns the calling user.
func (c *Client) Me(ctx context.Context) (*User, error) {
	var u User
	_, err := c.do(ctx, http.MethodGet, "/chub/v1/me", nil, &u)
	return &u, err
}

// CreateUser creates a user (administrators only).
func (c *Client) CreateUser(ctx context.Context, name, displayName, tenantID string, admin bool) (*User, error) {
	var u User
	_, err := c.do(ctx, http.MethodPost, "/chub/v1/users", map[string]any{"name": name, "displayName": displayName, "tenantId": tenantID, "admin": admin}, &u)
	return &u, err
}

// ListUsers lists users (administrators only).
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	var out struct {
		Value []User `json:"value"`
	}
	_, err := c.do(ctx, http.MethodGet, "/chub/v1/users", nil, &out)
	return out.Value, err
}

// CreateToken makes an API token for a user.
func (c *Client) CreateToken(ctx context.Context, user, name string, expiresInDays int) (*NewToken, error) {
	var t NewToken
	_, err := c.do(ctx, http.MethodPost, "/chub/v1/users/"+url.PathEscape(user)+"/tokens", map[string]any{"name": name, "expiresInDays": expiresInDays}, &t)
	return &t, err
}

// ListWorkspaces lists the workspaces of the resource group.
func (c *Client) ListWorkspaces(ctx context.Context) ([]Workspace, error) {
	var out struct {
		Value []Workspace `json:"value"`
	}
	_, err := c.do(ctx, http.MethodGet, withVersion("/subscriptions/"+c.cfg.Subscription+"/resourceGroups/"+c.cfg.ResourceGroup+"/providers/Microsoft.MachineLearningServices/workspaces"), nil, &out)
	return out.Value, err
}

// PutWorkspace creates or updates a workspace.
func (c *Client) PutWorkspace(ctx context.Context, name, description string) (*Workspace, error) {
	var w Workspace
	_, err := c.do(ctx, http.MethodPut, withVersion(c.workspacePath(name)), map[string]any{"properties": map[string]any{"description": description}}, &w)
	return &w, err
}

// DeleteWorkspace deletes an empty workspace.
func (c *Client) DeleteWorkspace(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, withVersion(c.workspacePath(name)), nil, nil)
	return err
}
