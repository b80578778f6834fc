package client

import (
	"time"

	"github.com/computehub/chub"
)

// Compute is a compute resource as the API returns it.
type Compute struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties ComputeProperties `json:"properties"`
}

// ComputeProperties are the ARM-level compute properties.
type ComputeProperties struct {
	ComputeType       string             `json:"computeType"`
	ComputeLocation   string             `json:"computeLocation,omitempty"`
	ProvisioningState string             `json:"provisioningState,omitempty"`
	Description       string             `json:"description,omitempty"`
	CreatedOn         *time.Time         `json:"createdOn,omitempty"`
	ModifiedOn        *time.Time         `json:"modifiedOn,omitempty"`
	Properties        InstanceProperties `json:"properties"`
}

// InstanceProperties are the compute instance's settings and status.
type InstanceProperties struct {
	chub.InstanceSettings
	State                 chub.State          `json:"state,omitempty"`
	LastOperation         *chub.LastOperation `json:"lastOperation,omitempty"`
	Errors                []chub.ErrorDetail  `json:"errors,omitempty"`
	CreatedBy             *CreatedBy          `json:"createdBy,omitempty"`
	ConnectivityEndpoints *Connectivity       `json:"connectivityEndpoints,omitempty"`
	Applications          []Application       `json:"applications,omitempty"`
	// LastActivityTime is the instance's last use the agent saw (read-only).
	LastActivityTime *time.Time `json:"lastActivityTime,omitempty"`
}

// CreatedBy names an instance's creator.
type CreatedBy struct {
	UserName  string `json:"userName"`
	UserOrgID string `json:"userOrgId"`
	UserID    string `json:"userId"`
}

// Connectivity holds an instance's addresses.
type Connectivity struct {
	PublicIPAddress  *string `json:"publicIpAddress"`
	PrivateIPAddress *string `json:"privateIpAddress"`
}

// Application is one application an instance offers.
type Application struct {
	DisplayName string `json:"displayName"`
	EndpointURI string `json:"endpointUri"`
}

// Workspace is a workspace resource.
type Workspace struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties map[string]any    `json:"properties"`
}

// Operation is the status document of an asynchronous operation.
type Operation struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Status    chub.OpStatus     `json:"status"`
	StartTime string            `json:"startTime"`
	EndTime   string            `json:"endTime"`
	Error     *chub.ErrorDetail `json:"error"`
	// StatusURL is where the status is polled (the Azure-AsyncOperation header).
	StatusURL string `json:"-"`
}

// Done reports whether the operation reached a terminal status.
func (o *Operation) Done() bool {
	return o.Status == chub.OpSucceeded || o.Status == chub.OpFailed || o.Status == chub.OpCanceled
}

// User is a ComputeHub user.
type User struct {
	ObjectID    string    `json:"objectId"`
	TenantID    string    `json:"tenantId"`
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName"`
	Admin       bool      `json:"admin"`
	CreatedAt   time.Time `json:"createdAt"`
}

// NewToken is a token just made; Token is its secret, shown only now.
type NewToken struct {
	ID        string     `json:"id"`
	User      string     `json:"user"`
	Token     string     `json:"token"`
	ExpiresAt *time.Time `json:"expiresAt"`
}

// Usage is one usage line of a region.
type Usage struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	Unit         string `json:"unit"`
	CurrentValue int64  `json:"currentValue"`
	Limit        int64  `json:"limit"`
	Name         struct {
		Value          string `json:"value"`
		LocalizedValue string `json:"localizedValue"`
	} `json:"name"`
}
