package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/lifecycle"
)

func scopeOf(p params) chub.WorkspaceScope {
	return chub.WorkspaceScope{Subscription: p["sub"], ResourceGroup: p["rg"], Workspace: p["ws"]}
}

// authorize checks the caller's permission for action at scope, and notes
// both for the audit log.
func (s *Server) authorize(r *http.Request, action, scope string) error {
	if a := auditOf(r.Context()); a != nil && (a.action == "" || r.Method != http.MethodGet) {
		a.action, a.resource = action, scope
	}
	return s.cfg.Authorizer.Authorize(r.Context(), caller(r), action, scope)
}

// workspace loads the workspace a compute path names, so that a missing
// workspace is reported as such.
func (s *Server) workspace(r *http.Request, p params) (*chub.Workspace, error) {
	return s.cfg.Store.GetWorkspace(r.Context(), scopeOf(p))
}

func (s *Server) getCompute(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionComputeRead, ws.Scope.ResourceID()+"/computes/"+p["name"]); err != nil {
		return err
	}
	c, err := s.cfg.Store.GetCompute(r.Context(), ws.Scope, p["name"])
	if err != nil {
		return err
	}
	if err := s.markJobRunning(r.Context(), []*chub.Compute{c}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.computeJSON(r, c))
	return nil
}

type computeList struct {
	Value    []computeResource `json:"value"`
	NextLink *string           `json:"nextLink,omitempty"`
}

func (s *Server) listComputes(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	// Lists show only what the caller may read: everything when they may
	// read the workspace's computes, else the computes they may read one by one.
	readErr := s.authorize(r, chub.ActionComputeRead, ws.Scope.ResourceID()+"/computes")
	readAll := readErr == nil
	skip := 0
	if v := r.URL.Query().Get("$skip"); v != "" {
		if skip, err = strconv.Atoi(v); err != nil || skip < 0 {
			return chub.Invalid("InvalidSkipToken", "$skip", "$skip must be a non-negative integer, got %q", v)
		}
	}
	var cs []*chub.Compute
	if readAll {
		cs, err = s.cfg.Store.ListComputes(r.Context(), ws.Scope, chub.Page{Skip: skip, Limit: s.cfg.PageSize + 1})
	} else {
		cs, err = s.readableComputes(r, ws.Scope, skip)
		if err == nil && len(cs) == 0 && skip == 0 {
			return readErr // nothing readable at all: say why
		}
	}
	if err != nil {
		return err
	}
	if err := s.markJobRunning(r.Context(), cs); err != nil {
		return err
	}
	out := computeList{Value: []computeResource{}}
	for i, c := range cs {
		if i == s.cfg.PageSize {
			q := r.URL.Query()
			q.Set("$skip", strconv.Itoa(skip+s.cfg.PageSize))
			next := baseURL(r) + r.URL.Path + "?" + q.Encode()
			out.NextLink = &next
			break
		}
		out.Value = append(out.Value, s.computeJSON(r, c))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// computeBody is the PUT body of a compute.
type computeBody struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties *struct {
		ComputeType string                 `json:"computeType"`
		Description string                 `json:"description"`
		Properties  *chub.InstanceSettings `json:"properties"`
	} `json:"properties"`
}

func (s *Server) putCompute(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionComputeWrite, ws.Scope.ResourceID()+"/computes/"+p["name"]); err != nil {
		return err
	}
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	if raw == nil {
		return chub.Invalid("InvalidRequestContent", "", "the request body is empty; send a JSON document")
	}
	var body computeBody
	if err := decodeJSON(raw, &body); err != nil {
		return err
	}
	if body.Properties == nil {
		return chub.Invalid("InvalidRequestContent", "properties", "the compute's properties are required: {\"properties\":{\"computeType\":\"ComputeInstance\",\"properties\":{\"vmSize\":\"...\"}}}")
	}
	if !strings.EqualFold(body.Properties.ComputeType, "ComputeInstance") {
		return chub.Invalid("UnsupportedComputeType", "properties.computeType", "computeType %q is not supported here; only ComputeInstance is", body.Properties.ComputeType)
	}
	req := lifecycle.CreateRequest{Location: body.Location, Description: body.Properties.Description, Tags: body.Tags}
	if body.Properties.Properties != nil {
		req.Settings = *body.Properties.Properties
	}
	maxJobs, maxJobsSet := maxConcurrentJobsIn(raw)
	existing, err := s.cfg.Store.GetCompute(r.Context(), ws.Scope, p["name"])
	if err != nil && !chub.IsNotFound(err) {
		return err
	}
	if maxJobsSet && (existing == nil || existing.Settings.MaxConcurrentJobs != maxJobs) {
		if err := s.checkMaxJobs(existing, req.Settings, maxJobs); err != nil {
			return err
		}
	}
	c, op, created, err := s.cfg.Lifecycle.CreateOrUpdate(r.Context(), caller(r), ws.Scope, p["name"], req)
	if err != nil {
		return err
	}
	if !created {
		if maxJobsSet && c.Settings.MaxConcurrentJobs != maxJobs {
			if c, err = s.setMaxJobs(r, c, maxJobs); err != nil {
				return err
			}
		}
		if err := s.markJobRunning(r.Context(), []*chub.Compute{c}); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s.computeJSON(r, c))
		return nil
	}
	s.operationHeaders(w, r, op, false)
	writeJSON(w, http.StatusCreated, s.computeJSON(r, c))
	return nil
}

// maxConcurrentJobsIn reads properties.properties.maxConcurrentJobs of a
// compute body (decoded already, so well typed): an update changes it only
// when the body has it.
func maxConcurrentJobsIn(raw []byte) (int, bool) {
	var b struct {
		Properties *struct {
			Properties *struct {
				MaxConcurrentJobs *int `json:"maxConcurrentJobs"`
			} `json:"properties"`
		} `json:"properties"`
	}
	if json.Unmarshal(raw, &b) != nil || b.Properties == nil || b.Properties.Properties == nil || b.Properties.Properties.MaxConcurrentJobs == nil {
		return 0, false
	}
	return *b.Properties.Properties.MaxConcurrentJobs, true
}

// checkMaxJobs checks maxConcurrentJobs against the size the instance has
// (existing) or is created with.
func (s *Server) checkMaxJobs(existing *chub.Compute, settings chub.InstanceSettings, n int) error {
	sizeName := settings.VMSize
	if existing != nil {
		sizeName = existing.Settings.VMSize
	}
	if n < 0 {
		return chub.CheckMaxConcurrentJobs(n, chub.VMSize{Name: sizeName})
	}
	if s.cfg.Catalog == nil {
		return nil
	}
	size, ok := s.cfg.Catalog().Lookup(sizeName)
	if !ok {
		return nil // the lifecycle says the size is wrong
	}
	return chub.CheckMaxConcurrentJobs(n, size)
}

// setMaxJobs changes an existing instance's maxConcurrentJobs (checked
// already) and wakes its queue, which may start more jobs now.
func (s *Server) setMaxJobs(r *http.Request, c *chub.Compute, n int) (*chub.Compute, error) {
	for attempt := 0; ; attempt++ {
		c.Settings.MaxConcurrentJobs = n
		c.ModifiedBy, c.ModifiedAt = caller(r).Principal(), time.Now().UTC()
		err := s.cfg.Store.UpdateCompute(r.Context(), c)
		if chub.ErrorKind(err) == chub.KindConflict && attempt < 5 {
			if c, err = s.cfg.Store.GetCompute(r.Context(), c.Scope, c.Name); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if s.cfg.Jobs != nil {
			s.cfg.Jobs.Wake(c.ID)
		}
		return c, nil
	}
}

// markJobRunning shows the running instances that run jobs as JobRunning
// (Azure's state), counted once for a list.
func (s *Server) markJobRunning(ctx context.Context, cs []*chub.Compute) error {
	running := 0
	for _, c := range cs {
		if c.State == chub.StateRunning {
			running++
		}
	}
	switch {
	case running == 0:
		return nil
	case len(cs) == 1:
		js, err := s.cfg.Store.ListJobs(ctx, chub.JobFilter{ComputeID: cs[0].ID, Statuses: busyJobStatuses, View: chub.JobViewAll, Page: chub.Page{Limit: 1}})
		if err != nil {
			return err
		}
		if len(js) > 0 {
			cs[0].State = chub.StateJobRunning
		}
	default:
		n, err := s.cfg.Store.CountJobs(ctx, busyJobStatuses)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.State == chub.StateRunning && n[c.ID] > 0 {
				c.State = chub.StateJobRunning
			}
		}
	}
	return nil
}

// operationHeaders tells the client where to poll an operation.
func (s *Server) operationHeaders(w http.ResponseWriter, r *http.Request, op *chub.Operation, withLocation bool) {
	v := url.QueryEscape(r.URL.Query().Get("api-version"))
	base := fmt.Sprintf("%s/subscriptions/%s/%s/locations/%s", baseURL(r), urlSub(op.ResourceID), provider, op.Location)
	w.Header().Set("Azure-AsyncOperation", base+"/computeOperationsStatus/"+op.ID+"?api-version="+v)
	if withLocation {
		w.Header().Set("Location", base+"/computeOperationsResults/"+op.ID+"?api-version="+v)
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter.Seconds()+0.5)))
}

// urlSub extracts the subscription from an ARM id.
func urlSub(id string) string {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) > 1 {
		return parts[1]
	}
	return ""
}

func (s *Server) deleteCompute(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionComputeDelete, ws.Scope.ResourceID()+"/computes/"+p["name"]); err != nil {
		return err
	}
	switch action := r.URL.Query().Get("underlyingResourceAction"); {
	case action == "":
		return chub.Invalid("MissingUnderlyingResourceAction", "underlyingResourceAction", "the underlyingResourceAction query parameter is required; use underlyingResourceAction=Delete to delete the compute instance")
	case strings.EqualFold(action, "Detach"):
		return chub.Invalid("DetachNotSupported", "underlyingResourceAction", "underlyingResourceAction=Detach is not supported for a compute instance, which has no underlying resource to keep; use underlyingResourceAction=Delete")
	case !strings.EqualFold(action, "Delete"):
		return chub.Invalid("InvalidUnderlyingResourceAction", "underlyingResourceAction", "underlyingResourceAction must be Delete, got %q", action)
	}
	op, err := s.cfg.Lifecycle.Delete(r.Context(), caller(r), ws.Scope, p["name"])
	if err != nil {
		return err
	}
	if op == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	s.operationHeaders(w, r, op, true)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

var actions = map[chub.OperationName]string{
	chub.OpStart:   chub.ActionComputeStart,
	chub.OpStop:    chub.ActionComputeStop,
	chub.OpRestart: chub.ActionComputeRestart,
}

func (s *Server) actCompute(name chub.OperationName) func(http.ResponseWriter, *http.Request, params) error {
	return func(w http.ResponseWriter, r *http.Request, p params) error {
		ws, err := s.workspace(r, p)
		if err != nil {
			return err
		}
		if err := s.authorize(r, actions[name], ws.Scope.ResourceID()+"/computes/"+p["name"]); err != nil {
			return err
		}
		var op *chub.Operation
		if name == chub.OpStop {
			cancelJobs := false
			if v := r.URL.Query().Get("cancelJobs"); v != "" {
				if cancelJobs, err = strconv.ParseBool(v); err != nil {
					return chub.Invalid("InvalidQueryParameter", "cancelJobs", "cancelJobs must be true or false, got %q", v)
				}
			}
			_, op, err = s.cfg.Lifecycle.Stop(r.Context(), caller(r), ws.Scope, p["name"], cancelJobs)
		} else {
			_, op, err = s.cfg.Lifecycle.Act(r.Context(), caller(r), ws.Scope, p["name"], name)
		}
		if err != nil {
			return err
		}
		s.operationHeaders(w, r, op, true)
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
}

type node struct {
	NodeID           string  `json:"nodeId"`
	PrivateIPAddress string  `json:"privateIpAddress"`
	PublicIPAddress  *string `json:"publicIpAddress"`
	Port             float64 `json:"port"`
	NodeState        string  `json:"nodeState"`
	RunID            *string `json:"runId"`
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionComputeListNode, ws.Scope.ResourceID()+"/computes/"+p["name"]); err != nil {
		return err
	}
	c, err := s.cfg.Store.GetCompute(r.Context(), ws.Scope, p["name"])
	if err != nil {
		return err
	}
	if err := s.markJobRunning(r.Context(), []*chub.Compute{c}); err != nil {
		return err
	}
	nodes := []node{}
	if c.State == chub.StateRunning || c.State == chub.StateJobRunning {
		st, err := s.cfg.Runtime.Inspect(r.Context(), c.ID)
		if err != nil {
			return err
		}
		if st.Phase == chub.PhaseRunning {
			ip := st.PrivateIP
			if ip == "" {
				ip = "127.0.0.1"
			}
			port := float64(c.SSHPort)
			state := "idle"
			if c.State == chub.StateJobRunning {
				state = "running"
			}
			nodes = append(nodes, node{NodeID: "tvm-" + c.ID, PrivateIPAddress: ip, Port: port, NodeState: state})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes, "nextLink": nil})
	return nil
}

func (s *Server) checkName(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionComputeRead, ws.Scope.ResourceID()+"/computes"); err != nil {
		return err
	}
	var body struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	type answer struct {
		NameAvailable bool   `json:"nameAvailable"`
		Reason        string `json:"reason,omitempty"`
		Message       string `json:"message,omitempty"`
	}
	if err := chub.ValidateComputeName(body.Name); err != nil {
		writeJSON(w, http.StatusOK, answer{Reason: "Invalid", Message: chub.Detail(err).Message})
		return nil
	}
	taken, err := s.cfg.Store.ComputeNameTaken(r.Context(), body.Name)
	if err != nil {
		return err
	}
	if taken {
		writeJSON(w, http.StatusOK, answer{Reason: "AlreadyExists", Message: fmt.Sprintf("the name %q is already used by a compute in region %q", body.Name, s.cfg.Region)})
		return nil
	}
	writeJSON(w, http.StatusOK, answer{NameAvailable: true})
	return nil
}

// readableComputes pages through the computes the caller may read one by one.
func (s *Server) readableComputes(r *http.Request, scope chub.WorkspaceScope, skip int) ([]*chub.Compute, error) {
	all, err := s.cfg.Store.ListComputes(r.Context(), scope, chub.Page{})
	if err != nil {
		return nil, err
	}
	var mine []*chub.Compute
	for _, c := range all {
		if ok, err := s.rbac().Permitted(r.Context(), caller(r), chub.ActionComputeRead, c.ResourceID()); err != nil {
			return nil, err
		} else if ok {
			mine = append(mine, c)
		}
	}
	if skip >= len(mine) {
		return nil, nil
	}
	mine = mine[skip:]
	if len(mine) > s.cfg.PageSize+1 {
		mine = mine[:s.cfg.PageSize+1]
	}
	return mine, nil
}

func (s *Server) resizeCompute(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionComputeResize, ws.Scope.ResourceID()+"/computes/"+p["name"]); err != nil {
		return err
	}
	var body struct {
		TargetVMSize string `json:"targetVMSize"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.TargetVMSize == "" {
		return chub.Invalid("MissingTargetVmSize", "targetVMSize", "targetVMSize is required, e.g. {\"targetVMSize\":\"Standard_DS3_v2\"}")
	}
	_, op, err := s.cfg.Lifecycle.Resize(r.Context(), caller(r), ws.Scope, p["name"], body.TargetVMSize)
	if err != nil {
		return err
	}
	s.operationHeaders(w, r, op, true)
	w.WriteHeader(http.StatusAccepted)
	return nil
}
