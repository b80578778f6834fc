// Package armtemplate evaluates Azure Resource Manager (ARM) JSON templates:
// parameters (types, defaults, allowedValues, min/max), variables, the
// template expression language ("[...]" strings with function calls,
// property and index access, "[[" escapes), condition, copy loops,
// dependsOn ordering and outputs. It knows nothing of HTTP or of what the
// resources are: a Plan lists the resources to apply in dependency order
// and renders each one's body when its turn comes (so that reference()
// sees what was deployed before it).
//
// Every error is a *chub.Error with Code "InvalidTemplate" (or
// "InvalidTemplateParameter"/"MissingRequiredParameter" for parameter
// values) whose Target is the place in the template, e.g.
// "resources[0].properties.properties.vmSize".
package armtemplate

import (
	"time"
)

// Deployment is what the deployment-context functions answer:
// resourceGroup(), subscription(), deployment(), utcNow().
type Deployment struct {
	Subscription  string // subscription().subscriptionId
	TenantID      string // subscription().tenantId
	ResourceGroup string // resourceGroup().name
	Location      string // resourceGroup().location
	Name          string // deployment().name
	// TemplateLink is deployment().properties.templateLink.uri; "" when
	// the template was sent inline (then templateLink is absent).
	TemplateLink string
	Now          time.Time // utcNow(), allowed in parameter defaults only
}

// Referencer answers reference(resourceID, apiVersion, 'Full'): the
// resource's current GET body when full, else its "properties".
type Referencer func(resourceID, apiVersion string, full bool) (any, error)

// Template is a parsed template.
type Template struct {
	ContentVersion string
	raw            map[string]any
}

// ParameterValue is a parameter's or output's type and value, as Azure's
// deployment GET echoes them: {"type":"String","value":...}.
type ParameterValue struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Resource is one resource to apply, after copy loops are expanded and
// false conditions dropped.
type Resource struct {
	// Path is the place in the template: "resources[0]",
	// "resources[1].resources[0]"; for a copy loop's iteration
	// "resources[2][3]" (iteration 3).
	Path string
	// Symbolic is the resource's symbolic name (languageVersion 2.0
	// templates), "" otherwise.
	Symbolic   string
	Type       string // full type: "Microsoft.MachineLearningServices/workspaces/computes"
	APIVersion string
	Name       string // full name: "ws/ci"
	// ID is the resource's ARM id:
	// /subscriptions/S/resourceGroups/RG/providers/NS/t1/n1/t2/n2, or
	// SCOPE/providers/NS/t/n for an extension resource with a scope.
	ID string
	// Scope is the ARM id of an extension resource's "scope" ("" otherwise).
	Scope string
	// DependsOn are the ids of the plan's resources this one waits for
	// (explicit dependsOn, a copy loop's name expanded, and reference()
	// of a resource in the template).
	DependsOn []string

	index int // internal: which template resource, which iteration
	iter  int
}

// Plan is an evaluated template.
type Plan struct {
	// Parameters are every parameter's final value (given or default),
	// with its declared type spelled as Azure echoes it (String, Int,
	// Bool, Object, Array, SecureString, SecureObject).
	Parameters map[string]ParameterValue
	// Resources in an order where each comes after what it depends on;
	// ties keep template order.
	Resources []*Resource

	t        *Template
	d        Deployment
	params   map[string]any
	varCache map[string]any
	varBusy  map[string]bool
	bodies   []map[string]any
	loops    []string
	iters    []map[string]int
	rawDeps  [][]string
}

// Parse reads a template document, checking its structure (contentVersion,
// parameters, variables, resources, outputs) without evaluating it.
func Parse(raw []byte) (*Template, error) {
	return parseTemplate(raw)
}

// Plan evaluates parameters, variables, resource names, conditions, copy
// loops and dependsOn for a deployment with these parameter values (the
// "value" of each {"p":{"value":...}}).
func (t *Template) Plan(d Deployment, params map[string]any) (*Plan, error) {
	return t.plan(d, params)
}

// Render evaluates a resource's body: every member but type, name,
// apiVersion, dependsOn, condition, copy, comments and nested resources
// (location, tags, sku, kind, identity, properties, ...), with
// expressions evaluated and property copy loops expanded. A null
// result of an expression (json('null')) leaves the member out.
func (p *Plan) Render(r *Resource, ref Referencer) (map[string]any, error) {
	return p.render(r, ref)
}

// Outputs evaluates the template's outputs (condition and copy included).
func (p *Plan) Outputs(ref Referencer) (map[string]ParameterValue, error) {
	return p.outputs(ref)
}
