package api

import (
	"encoding/json"
	"net"
	"net/http"
	"time"

	"github.com/computehub/chub"
)

// systemData is ARM's record of who made and changed a resource.
type systemData struct {
	CreatedBy          string    `json:"createdBy"`
	CreatedByType      string    `json:"createdByType"`
	CreatedAt          time.Time `json:"createdAt"`
	LastModifiedBy     string    `json:"lastModifiedBy"`
	LastModifiedByType string    `json:"lastModifiedByType"`
	LastModifiedAt     time.Time `json:"lastModifiedAt"`
}

func sysData(created chub.Principal, createdAt time.Time, modified chub.Principal, modifiedAt time.Time) systemData {
	return systemData{CreatedBy: created.UserName, CreatedByType: "User", CreatedAt: createdAt,
		LastModifiedBy: modified.UserName, LastModifiedByType: "User", LastModifiedAt: modifiedAt}
}

type computeResource struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	SystemData systemData        `json:"systemData"`
	Properties computeProperties `json:"properties"`
}

type computeProperties struct {
	ComputeType        string           `json:"computeType"`
	ComputeLocation    string           `json:"computeLocation"`
	ProvisioningState  string           `json:"provisioningState"`
	Description        string           `json:"description"`
	CreatedOn          time.Time        `json:"createdOn"`
	ModifiedOn         time.Time        `json:"modifiedOn"`
	ResourceID         *string          `json:"resourceId"`
	ProvisioningErrors []map[string]any `json:"provisioningErrors"`
	IsAttachedCompute  bool             `json:"isAttachedCompute"`
	DisableLocalAuth   bool             `json:"disableLocalAuth"`
	Properties         json.RawMessage  `json:"properties"`
}

// instanceView adds the read-only fields to the stored settings.
type instanceView struct {
	chub.InstanceSettings
	State                 chub.State          `json:"state"`
	LastOperation         *chub.LastOperation `json:"lastOperation"`
	Errors                []chub.ErrorDetail  `json:"errors"`
	CreatedBy             createdBy           `json:"createdBy"`
	ConnectivityEndpoints connectivity        `json:"connectivityEndpoints"`
	Applications          []application       `json:"applications"`
	// LastActivityTime is a ComputeHub extension: the last use the agent saw.
	LastActivityTime *time.Time        `json:"lastActivityTime"`
	DataDisks        []any             `json:"dataDisks"`
	DataMounts       []any             `json:"dataMounts"`
	Versions         map[string]string `json:"versions"`
}

type createdBy struct {
	UserName  string `json:"userName"`
	UserOrgID string `json:"userOrgId"`
	UserID    string `json:"userId"`
}

type connectivity struct {
	PublicIPAddress  *string `json:"publicIpAddress"`
	PrivateIPAddress *string `json:"privateIpAddress"`
}

type application struct {
	DisplayName string `json:"displayName"`
	EndpointURI string `json:"endpointUri"`
}

const computeType = "Microsoft.MachineLearningServices/workspaces/computes"

func (s *Server) computeJSON(r *http.Request, c *chub.Compute) computeResource {
	errs := c.Errors
	if errs == nil {
		errs = []chub.ErrorDetail{}
	}
	view := instanceView{
		InstanceSettings: c.Settings,
		State:            c.State,
		LastOperation:    c.LastOperation,
		Errors:           errs,
		CreatedBy:        createdBy{UserName: c.CreatedBy.UserName, UserOrgID: c.CreatedBy.OrgID, UserID: c.CreatedBy.UserID},
		Applications:     s.applications(c),
		LastActivityTime: c.Observed.LastActivity,
		DataDisks:        []any{},
		DataMounts:       []any{},
		Versions:         map[string]string{"runtime": s.cfg.Runtime.Name()},
	}
	if c.Observed.PrivateIP != "" {
		ip := c.Observed.PrivateIP
		view.ConnectivityEndpoints.PrivateIPAddress = &ip
	}
	if s.cfg.PublicHost != "" {
		host := s.cfg.PublicHost
		view.ConnectivityEndpoints.PublicIPAddress = &host
	}
	if view.SSHSettings != nil && c.SSHPort != 0 {
		ssh := *view.SSHSettings
		ssh.SSHPort = c.SSHPort
		view.SSHSettings = &ssh
	}
	props, _ := json.Marshal(view)
	provErrs := []map[string]any{}
	for _, e := range c.Errors {
		provErrs = append(provErrs, map[string]any{"error": e})
	}
	tags := c.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return computeResource{
		ID: c.ResourceID(), Name: c.Name, Type: computeType, Location: c.Location, Tags: tags,
		SystemData: sysData(c.CreatedBy, c.CreatedAt, c.ModifiedBy, c.ModifiedAt),
		Properties: computeProperties{
			ComputeType: "ComputeInstance", ComputeLocation: c.Location, ProvisioningState: c.ProvisioningState(),
			Description: c.Description, CreatedOn: c.CreatedAt, ModifiedOn: c.ModifiedAt,
			ProvisioningErrors: provErrs, Properties: props,
		},
	}
}

type workspaceResource struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	SystemData systemData        `json:"systemData"`
	SKU        map[string]string `json:"sku"`
	Properties map[string]any    `json:"properties"`
}

func workspaceJSON(w *chub.Workspace) workspaceResource {
	tags := w.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return workspaceResource{
		ID: w.Scope.ResourceID(), Name: w.Scope.Workspace, Type: "Microsoft.MachineLearningServices/workspaces",
		Location: w.Location, Tags: tags, SystemData: sysData(w.CreatedBy, w.CreatedAt, w.CreatedBy, w.ModifiedAt),
		SKU: map[string]string{"name": "Basic", "tier": "Basic"},
		Properties: map[string]any{
			"workspaceId": w.ID, "friendlyName": w.FriendlyName, "description": w.Description,
			"provisioningState": "Succeeded", "creationTime": w.CreatedAt,
		},
	}
}

// baseURL is the server's external URL (Config.ExternalURL), the base of
// every URL the API hands out. The request's Host header is never echoed:
// only an api.Server built without an ExternalURL (a test) falls back to
// the address the connection was accepted on.
func baseURL(r *http.Request) string {
	if u, ok := r.Context().Value(externalURLKey).(string); ok && u != "" {
		return u
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return "https://" + a.String()
	}
	return "https://localhost"
}
