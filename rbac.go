package chub

import (
	"strings"
	"time"
)

// RoleDefinition is a role in Azure's JSON shape: the actions it allows,
// minus the ones it excludes, at the scopes it may be assigned to.
type RoleDefinition struct {
	Name             string   `json:"Name"`
	ID               string   `json:"Id"`
	IsCustom         bool     `json:"IsCustom"`
	Description      string   `json:"Description"`
	Actions          []string `json:"Actions"`
	NotActions       []string `json:"NotActions"`
	AssignableScopes []string `json:"AssignableScopes"`
}

// ScopeCovers reports whether an assignment at scope applies to resource:
// the same id or one below it, case-insensitively; / covers everything.
func ScopeCovers(scope, resource string) bool {
	if scope == "/" {
		return true
	}
	s, r := strings.ToLower(strings.TrimRight(scope, "/")), strings.ToLower(strings.TrimRight(resource, "/"))
	return r == s || strings.HasPrefix(r, s+"/")
}

// AssignableAt reports whether the role may be assigned at scope: one of
// its assignable scopes is the scope or above it.
func (r RoleDefinition) AssignableAt(scope string) bool {
	for _, sc := range r.AssignableScopes {
		if ScopeCovers(sc, scope) {
			return true
		}
	}
	return false
}

// RoleAssignment grants a principal a role at a scope (an ARM id prefix:
// a subscription, a resource group, a workspace or one compute).
type RoleAssignment struct {
	ID               string
	PrincipalID      string
	RoleDefinitionID string
	Scope            string
	CreatedAt        time.Time
	CreatedBy        string
}

// AuditEntry is one record of the append-only audit log.
type AuditEntry struct {
	ID            int64     `json:"id"`
	Time          time.Time `json:"time"`
	PrincipalID   string    `json:"principalId"`
	PrincipalName string    `json:"principalName"`
	Action        string    `json:"action"`
	Resource      string    `json:"resource"`
	// Result is Succeeded, Failed or Denied.
	Result        string `json:"result"`
	Status        int    `json:"status"`
	ClientAddress string `json:"clientAddress"`
	CorrelationID string `json:"correlationId"`
	Detail        string `json:"detail,omitempty"`
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Since     time.Time
	Principal string // id or name
	Resource  string // prefix of the resource id, case-insensitive
	Limit     int
}

// Quota is a dedicated-core limit of a subscription in a region, as in
// Azure: per VM family, or for all families when Family is empty.
type Quota struct {
	Subscription string
	Location     string
	Family       string
	Limit        int64
}

// QuotaHold is the cores an instance holds against its subscription's
// quota in its region.
type QuotaHold struct {
	HolderID     string
	Subscription string
	Location     string
	Family       string
	Cores        int64
}

// The dedicated-core limits in force until an administrator sets others.
const (
	DefaultFamilyQuota int64 = 100
	DefaultRegionQuota int64 = 200
)

// Usage is the cores a subscription holds in a region: per family and in total.
type Usage struct {
	ByFamily map[string]int64
	Total    int64
}

// QuotaExceeded is the refusal of a hold that would go over a limit.
func QuotaExceeded(family string, requested, used, limit int64) *Error {
	what := "family " + family
	if family == "" {
		what = "the subscription's regional total"
	}
	return Conflict("QuotaExceeded", "properties.properties.vmSize",
		"Operation could not be completed as it results in exceeding approved %s quota: requested %d cores, %d in use, limit %d. Delete instances, stop instances created with releaseQuotaOnStop, or ask an administrator to raise the quota (chub quota set).",
		what, requested, used, limit)
}
