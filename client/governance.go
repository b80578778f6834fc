package client

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/computehub/chub"
)

// RoleDefinition is a role as the Azure API shapes it.
type RoleDefinition struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		RoleName    string `json:"roleName"`
		Description string `json:"description"`
		Type        string `json:"type"`
		Permissions []struct {
			Actions    []string `json:"actions"`
			NotActions []string `json:"notActions"`
		} `json:"permissions"`
		AssignableScopes []string `json:"assignableScopes"`
	} `json:"properties"`
}

// RoleAssignment is an assignment as the Azure API shapes it.
type RoleAssignment struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		RoleDefinitionID string    `json:"roleDefinitionId"`
		PrincipalID      string    `json:"principalId"`
		Scope            string    `json:"scope"`
		CreatedOn        time.Time `json:"createdOn"`
	} `json:"properties"`
}

func authzPath(scope, rest string) string {
	return strings.TrimRight(scope, "/") + "/providers/Microsoft.Authorization/" + rest
}

// RoleDefinitions lists the roles usable at scope.
func (c *Client) RoleDefinitions(ctx context.Context, scope string) ([]RoleDefinition, error) {
	var out struct {
		Value []RoleDefinition `json:"value"`
	}
	_, err := c.do(ctx, http.MethodGet, withVersion(authzPath(scope, "roleDefinitions")), nil, &out)
	return out.Value, err
}

// PutRoleDefinition creates or replaces a custom role from Azure CLI's
// role-definition JSON shape.
func (c *Client) PutRoleDefinition(ctx context.Context, r chub.RoleDefinition) (*RoleDefinition, error) {
	if r.ID == "" {
		r.ID = newGUID()
	}
	scope := "/"
	if len(r.AssignableScopes) > 0 {
		scope = r.AssignableScopes[0]
	}
	body := map[string]any{"properties": map[string]any{"roleName": r.Name, "description": r.Description, "type": "CustomRole",
		"permissions": []map[string]any{{"actions": r.Actions, "notActions": r.NotActions}}, "assignableScopes": r.AssignableScopes}}
	var out RoleDefinition
	_, err := c.do(ctx, http.MethodPut, withVersion(authzPath(scope, "roleDefinitions/"+r.ID)), body, &out)
	return &out, err
}

// DeleteRoleDefinition deletes a custom role.
func (c *Client) DeleteRoleDefinition(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, withVersion(authzPath("/", "roleDefinitions/"+id)), nil, nil)
	return err
}

// RoleAssignments lists the assignments at, above and below scope, of one
// principal when principalID is not empty.
func (c *Client) RoleAssignments(ctx context.Context, scope, principalID string) ([]RoleAssignment, error) {
	p := authzPath(scope, "roleAssignments")
	if principalID != "" {
		p += "?$filter=" + url.QueryEscape("principalId eq '"+principalID+"'")
	}
	var out struct {
		Value []RoleAssignment `json:"value"`
	}
	_, err := c.do(ctx, http.MethodGet, withVersion(p), nil, &out)
	return out.Value, err
}

// AssignRole gives a principal a role (by name or id) at scope.
func (c *Client) AssignRole(ctx context.Context, principalID, role, scope string) (*RoleAssignment, error) {
	var out RoleAssignment
	_, err := c.do(ctx, http.MethodPut, withVersion(authzPath(scope, "roleAssignments/"+newGUID())),
		map[string]any{"properties": map[string]any{"roleDefinitionId": role, "principalId": principalID}}, &out)
	return &out, err
}

// DeleteRoleAssignment deletes an assignment by its id (the full id or the GUID).
func (c *Client) DeleteRoleAssignment(ctx context.Context, scope, id string) error {
	if strings.Contains(id, "/providers/") {
		_, err := c.do(ctx, http.MethodDelete, withVersion(id), nil, nil)
		return err
	}
	_, err := c.do(ctx, http.MethodDelete, withVersion(authzPath(scope, "roleAssignments/"+id)), nil, nil)
	return err
}

// Quota is one limit as the quotas API lists it.
type Quota struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Limit  int64  `json:"limit"`
	Unit   string `json:"unit"`
	Status string `json:"status,omitempty"`
	Name   *struct {
		Value          string `json:"value"`
		LocalizedValue string `json:"localizedValue"`
	} `json:"name,omitempty"`
}

// Quotas lists the limits of a location.
func (c *Client) Quotas(ctx context.Context, loc string) ([]Quota, error) {
	var out struct {
		Value []Quota `json:"value"`
	}
	_, err := c.do(ctx, http.MethodGet, withVersion(c.locationPath(loc)+"/quotas"), nil, &out)
	return out.Value, err
}

// SetQuota sets the dedicated-core limit of a VM family, or of the whole
// region with family "totalCores".
func (c *Client) SetQuota(ctx context.Context, loc, family string, limit int64) error {
	id := c.locationPath(loc) + "/quotas/" + family
	typ := "Microsoft.MachineLearningServices/vmFamily/quotas"
	if strings.EqualFold(family, "totalCores") {
		typ = "Microsoft.MachineLearningServices/totalCores/quotas"
	}
	var out struct {
		Value []Quota `json:"value"`
	}
	if _, err := c.do(ctx, http.MethodPost, withVersion(c.locationPath(loc)+"/updateQuotas"),
		map[string]any{"value": []map[string]any{{"id": id, "type": typ, "limit": limit, "unit": "Count"}}}, &out); err != nil {
		return err
	}
	if len(out.Value) != 1 || out.Value[0].Status != "Success" {
		st := "no answer"
		if len(out.Value) == 1 {
			st = out.Value[0].Status
		}
		return fmt.Errorf("the quota of %s was not set: %s", family, st)
	}
	return nil
}

// Audit lists audit entries, newest first.
func (c *Client) Audit(ctx context.Context, since, principal, resource string, top int) ([]chub.AuditEntry, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if principal != "" {
		q.Set("principal", principal)
	}
	if resource != "" {
		q.Set("resource", resource)
	}
	if top > 0 {
		q.Set("top", fmt.Sprint(top))
	}
	var out struct {
		Value []chub.AuditEntry `json:"value"`
	}
	_, err := c.do(ctx, http.MethodGet, "/chub/v1/auditLogs?"+q.Encode(), nil, &out)
	return out.Value, err
}

// DeleteUser deletes a user.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, "/chub/v1/users/"+url.PathEscape(name), nil, nil)
	return err
}

// TokenInfo describes a token without its secret.
type TokenInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt"`
	RevokedAt *time.Time `json:"revokedAt"`
}

// ListTokens lists a user's tokens.
func (c *Client) ListTokens(ctx context.Context, user string) ([]TokenInfo, error) {
	var out struct {
		Value []TokenInfo `json:"value"`
	}
	_, err := c.do(ctx, http.MethodGet, "/chub/v1/users/"+url.PathEscape(user)+"/tokens", nil, &out)
	return out.Value, err
}

// RevokeToken revokes one of a user's tokens.
func (c *Client) RevokeToken(ctx context.Context, user, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/chub/v1/users/"+url.PathEscape(user)+"/tokens/"+url.PathEscape(id), nil, nil)
	return err
}

// SetPassword sets a user's password for the browser sign-in.
func (c *Client) SetPassword(ctx context.Context, user, password string) error {
	_, err := c.do(ctx, http.MethodPut, "/chub/v1/users/"+url.PathEscape(user)+"/password", map[string]any{"password": password}, nil)
	return err
}

// Resize changes the VM size of a stopped instance.
func (c *Client) Resize(ctx context.Context, ws, name, size string) (*Operation, error) {
	resp, err := c.do(ctx, http.MethodPost, withVersion(c.computePath(ws, name)+"/resize"), map[string]any{"targetVMSize": size}, nil)
	if err != nil {
		return nil, err
	}
	return asyncOp(resp), nil
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
