package chub

import (
	"context"
	"encoding/json"
	"time"
)

// DeploymentState is a deployment's provisioningState, with Azure's values.
type DeploymentState string

// The states a deployment goes through: Accepted (stored, not yet picked
// up), Running (resources being applied), then one of the terminal three.
// Canceling is not an Azure state: the deployment keeps answering Running
// while a cancel is on its way, and ends Canceled.
const (
	DeploymentAccepted  DeploymentState = "Accepted"
	DeploymentRunning   DeploymentState = "Running"
	DeploymentSucceeded DeploymentState = "Succeeded"
	DeploymentFailed    DeploymentState = "Failed"
	DeploymentCanceled  DeploymentState = "Canceled"
)

// Terminal reports whether the state is final.
func (s DeploymentState) Terminal() bool {
	return s == DeploymentSucceeded || s == DeploymentFailed || s == DeploymentCanceled
}

// Deployment modes.
const (
	DeploymentIncremental = "Incremental"
	DeploymentComplete    = "Complete"
)

// The deployment actions (Azure's, Microsoft.Resources).
const (
	ActionDeploymentRead   = "Microsoft.Resources/deployments/read"
	ActionDeploymentWrite  = "Microsoft.Resources/deployments/write"
	ActionDeploymentDelete = "Microsoft.Resources/deployments/delete"
	ActionDeploymentCancel = "Microsoft.Resources/deployments/cancel/action"
	// Validate and what-if need write on the deployment, as in Azure.
	ActionDeploymentValidate = "Microsoft.Resources/deployments/validate/action"
	ActionDeploymentWhatIf   = "Microsoft.Resources/deployments/whatIf/action"
)

// DeploymentError is a deployment's (or one operation's) error: Azure's
// shape, with details for each failed resource.
type DeploymentError struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Target  string            `json:"target,omitempty"`
	Details []DeploymentError `json:"details,omitempty"`
}

// Deployment is one ARM template deployment at resource-group scope.
type Deployment struct {
	ID            string // internal id
	Subscription  string
	ResourceGroup string
	Name          string
	Location      string
	Tags          map[string]string
	Mode          string // DeploymentIncremental or DeploymentComplete
	// Template is the template as sent (or as fetched from TemplateLink);
	// TemplateLink and ParametersLink are echoed as sent ("" when absent).
	Template       json.RawMessage
	TemplateLink   json.RawMessage
	ParametersLink json.RawMessage
	// Parameters are the parameter values as sent: {"p":{"value":...}}.
	Parameters   json.RawMessage
	TemplateHash string
	// CorrelationID is the x-ms-correlation-request-id of the PUT.
	CorrelationID string

	State DeploymentState
	// CancelRequested: a cancel arrived; the runner stops before the next
	// resource and ends the deployment Canceled.
	CancelRequested bool
	Error           *DeploymentError
	// Outputs are the evaluated outputs: {"name":{"type":"String","value":...}}.
	Outputs json.RawMessage
	// OutputResources are the ARM ids of the resources deployed.
	OutputResources []string
	// Dependencies is Azure's properties.dependencies array, as JSON.
	Dependencies json.RawMessage

	CreatedBy string // user id of the caller whose rights apply
	CreatedAt time.Time
	// Timestamp is when the state last changed; Duration runs from
	// CreatedAt to the end (or to now while running).
	Timestamp time.Time
	EndTime   time.Time
	Version   int64
}

// ResourceID is the deployment's ARM id.
func (d *Deployment) ResourceID() string {
	return "/subscriptions/" + d.Subscription + "/resourceGroups/" + d.ResourceGroup + "/providers/Microsoft.Resources/deployments/" + d.Name
}

// DeploymentOperation is one step of a deployment: one resource applied
// (Create), deleted (Delete, Complete mode) or the outputs evaluated.
type DeploymentOperation struct {
	DeploymentID string
	OperationID  string // stable per resource: hex of a hash of the target id
	Seq          int    // order of first appearance
	// ProvisioningOperation: Create, Delete, EvaluateDeploymentOutput.
	ProvisioningOperation string
	State                 DeploymentState // Running, Succeeded, Failed, Canceled
	Timestamp             time.Time
	Duration              time.Duration
	// StatusCode is the HTTP status of the resource's request, as Azure
	// names it ("OK", "Created", "BadRequest").
	StatusCode string
	Error      *DeploymentError
	// Target of the operation ("" for EvaluateDeploymentOutput).
	TargetID     string
	ResourceType string
	ResourceName string
	APIVersion   string
	SymbolicName string
}

// DeploymentStore keeps deployments and their operations. A deployment is
// unique by (subscription, resource group, name), case-insensitively.
type DeploymentStore interface {
	// PutDeployment inserts d, or replaces the deployment of that name
	// (its operations removed) when it is terminal; replacing one that is
	// not terminal is a KindConflict error (DeploymentActive).
	PutDeployment(ctx context.Context, d *Deployment) (created bool, err error)
	GetDeployment(ctx context.Context, subscription, resourceGroup, name string) (*Deployment, error)
	GetDeploymentByID(ctx context.Context, id string) (*Deployment, error)
	// ListDeployments lists a resource group's deployments, newest first.
	ListDeployments(ctx context.Context, subscription, resourceGroup string, p Page) ([]*Deployment, error)
	// ListActiveDeployments lists every deployment not terminal (for the runner).
	ListActiveDeployments(ctx context.Context) ([]*Deployment, error)
	// UpdateDeployment writes d, version-checked (KindConflict when stale).
	UpdateDeployment(ctx context.Context, d *Deployment) error
	// DeleteDeployment removes a terminal deployment and its operations;
	// one not terminal is a KindConflict error (DeploymentActive).
	DeleteDeployment(ctx context.Context, subscription, resourceGroup, name string) error
	// PutDeploymentOperation upserts by (DeploymentID, OperationID).
	PutDeploymentOperation(ctx context.Context, op *DeploymentOperation) error
	ListDeploymentOperations(ctx context.Context, deploymentID string) ([]*DeploymentOperation, error)
}
