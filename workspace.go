package chub

import (
	"strings"
	"time"
)

// ProviderPath is the ARM resource provider of every path we serve.
const ProviderPath = "/providers/Microsoft.MachineLearningServices"

// WorkspaceScope locates a workspace: subscription, resource group, name.
type WorkspaceScope struct {
	Subscription  string
	ResourceGroup string
	Workspace     string
}

// ResourceID is the workspace's ARM id.
func (s WorkspaceScope) ResourceID() string {
	return "/subscriptions/" + s.Subscription + "/resourceGroups/" + s.ResourceGroup + ProviderPath + "/workspaces/" + s.Workspace
}

// Key is the case-insensitive identity of the scope, as ARM compares names.
func (s WorkspaceScope) Key() string {
	return strings.ToLower(s.Subscription + "/" + s.ResourceGroup + "/" + s.Workspace)
}

// Workspace groups compute instances.
type Workspace struct {
	ID           string
	Scope        WorkspaceScope
	Location     string
	Description  string
	FriendlyName string
	Tags         map[string]string
	CreatedBy    Principal
	CreatedAt    time.Time
	ModifiedAt   time.Time
}

// User is a principal that calls the API.
type User struct {
	ID          string // object id (UUID)
	TenantID    string
	Name        string
	DisplayName string
	Admin       bool
	CreatedAt   time.Time
}

// Principal returns the user as recorded in createdBy.
func (u *User) Principal() Principal {
	return Principal{UserID: u.ID, UserName: u.Name, OrgID: u.TenantID}
}

// Token is an API bearer token; only the hash of its secret is kept.
type Token struct {
	ID        string
	UserID    string
	Name      string
	Hash      string // hex SHA-256 of the secret
	CreatedAt time.Time
	ExpiresAt *time.Time
	RevokedAt *time.Time
}
