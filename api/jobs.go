package api

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/lifecycle"
)

// jobResourceType is a job's ARM type.
const jobResourceType = "Microsoft.MachineLearningServices/workspaces/jobs"

// busyJobStatuses are the statuses of jobs that hold a slot of their
// instance: while it has one, a running instance is JobRunning.
var busyJobStatuses = []chub.JobStatus{chub.JobPreparing, chub.JobRunning, chub.JobFinalizing, chub.JobCancelRequested}

// waitingJobStatuses are the statuses of jobs in their instance's queue.
var waitingJobStatuses = []chub.JobStatus{chub.JobNotStarted, chub.JobQueued}

// jobScope is the ARM id of job name of a URL's workspace.
func jobScope(ws *chub.Workspace, name string) string { return ws.Scope.ResourceID() + "/jobs/" + name }

// authorizeAlso checks a further permission a request needs, leaving the
// audit entry to the request's main action.
func (s *Server) authorizeAlso(r *http.Request, action, scope string) error {
	return s.cfg.Authorizer.Authorize(r.Context(), caller(r), action, scope)
}

// auditResource records the resource a request acted on in its audit entry.
func auditResource(r *http.Request, action, resource string) {
	if a := auditOf(r.Context()); a != nil {
		a.action, a.resource = action, resource
	}
}

func checkJobName(name string) error {
	if !chub.JobNamePattern.MatchString(name) {
		return chub.Invalid("InvalidJobName", "id",
			"job name %q must be 1 to 255 letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	return nil
}

func (s *Server) putJob(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	name := p["id"]
	if err := checkJobName(name); err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionJobWrite, jobScope(ws, name)); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if body == nil {
		return chub.Invalid("InvalidRequestContent", "", "the request body is empty; send the job as JSON")
	}
	req, err := parseJobBody(body, ws.Scope)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		existing, err := s.cfg.Store.GetJob(r.Context(), ws.Scope, name)
		if chub.IsNotFound(err) {
			break
		}
		if err != nil {
			return err
		}
		auditResource(r, chub.ActionJobWrite, existing.ResourceID())
		j, changed, err := s.updateJob(r, existing, req)
		if chub.ErrorKind(err) == chub.KindConflict && attempt < 5 && strings.Contains(err.Error(), "ConcurrentUpdate") {
			continue
		}
		if err != nil {
			return err
		}
		_ = changed
		return s.writeJob(w, r, http.StatusOK, j)
	}
	j, err := s.newJob(r, ws, name, req)
	if err != nil {
		return err
	}
	auditResource(r, chub.ActionJobWrite, j.ResourceID())
	if err := s.cfg.Store.CreateJob(r.Context(), j); err != nil {
		return err
	}
	if s.cfg.Jobs != nil {
		s.cfg.Jobs.Wake(j.ComputeID)
	}
	return s.writeJob(w, r, http.StatusCreated, j)
}

// newJob checks a new job's references against the store: the instance
// (of this workspace, readable, and the caller's own), the code and the
// environment versions.
func (s *Server) newJob(r *http.Request, ws *chub.Workspace, name string, req *jobRequest) (*chub.Job, error) {
	ctx := r.Context()
	if req.isArchived != nil && *req.isArchived {
		return nil, chub.Invalid("InvalidJobArchive", "properties.isArchived", "a new job cannot be archived; submit it with isArchived false (or leave it out)")
	}
	spec := req.spec
	computeName := spec.ComputeID[strings.LastIndex(spec.ComputeID, "/")+1:]
	c, err := s.cfg.Store.GetCompute(ctx, ws.Scope, computeName)
	if chub.IsNotFound(err) {
		return nil, chub.Invalid("ComputeNotFound", "properties.computeId",
			"compute instance %q was not found in workspace %q; list them with 'chub compute list'", computeName, ws.Scope.Workspace)
	}
	if err != nil {
		return nil, err
	}
	if err := s.authorizeAlso(r, chub.ActionComputeRead, c.ResourceID()); err != nil {
		return nil, err
	}
	if c.Desired == chub.DesiredDeleted {
		return nil, chub.Conflict("ComputeBeingDeleted", "properties.computeId", "compute instance %q is being deleted; submit the job to another instance", c.Name)
	}
	me := caller(r)
	if owner := c.Owner(); owner != me.ID {
		who := owner
		if u, err := s.cfg.Store.UserByID(ctx, owner); err == nil {
			who = u.Name
		}
		return nil, chub.Errorf(chub.KindForbidden, "AuthorizationFailed", "properties.computeId",
			"a job runs on a compute instance only for its user: %s is assigned to %s, not to %s; submit the job to your own instance", c.Name, who, me.Name)
	}
	spec.ComputeID = c.ResourceID()
	if spec.CodeID != "" {
		a, err := s.jobAsset(r, chub.AssetCode, ws, spec.CodeID, "properties.codeId")
		if err != nil {
			return nil, err
		}
		spec.CodeID = a.ResourceID()
	}
	if spec.EnvironmentID != "" {
		a, err := s.jobAsset(r, chub.AssetEnvironment, ws, spec.EnvironmentID, "properties.environmentId")
		if err != nil {
			return nil, err
		}
		if imageKey(a.Image) != imageKey(c.Settings.Image) {
			return nil, chub.Invalid("EnvironmentImageMismatch", "properties.environmentId",
				"environment %s:%s has image %q but instance %s runs image %q: a job runs in its instance's own software, so its environment must name the instance's image (or leave environmentId out)",
				a.Name, a.Version, showImage(a.Image), c.Name, showImage(c.Settings.Image))
		}
		spec.EnvironmentID = a.ResourceID()
	}
	now := time.Now().UTC()
	return &chub.Job{
		ID: lifecycle.NewID(), WorkspaceID: ws.ID, Scope: ws.Scope, Name: name, ComputeID: c.ID, Spec: spec,
		Status: chub.JobNotStarted, CreatedBy: me.Principal(), CreatedAt: now, ModifiedBy: me.Principal(), ModifiedAt: now,
	}, nil
}

func showImage(image string) string {
	if image == "" {
		return "host"
	}
	return image
}

// jobAsset finds the code or environment version an ARM id (normalized by
// parseRef) names, and checks that the caller may read it.
func (s *Server) jobAsset(r *http.Request, kind chub.AssetKind, ws *chub.Workspace, id, target string) (*chub.AssetVersion, error) {
	segs := strings.Split(id, "/")
	name, version := segs[len(segs)-3], segs[len(segs)-1]
	what := map[chub.AssetKind]string{chub.AssetCode: "code", chub.AssetEnvironment: "environment"}[kind]
	a, err := s.cfg.Store.GetAsset(r.Context(), kind, ws.Scope, name, version)
	if chub.IsNotFound(err) {
		code := map[chub.AssetKind]string{chub.AssetCode: "CodeNotFound", chub.AssetEnvironment: "EnvironmentNotFound"}[kind]
		return nil, chub.Invalid(code, target, "%s %s version %s was not found in workspace %q; create it first (PUT .../%s/%s/versions/%s)",
			what, name, version, ws.Scope.Workspace, kind, name, version)
	}
	if err != nil {
		return nil, err
	}
	action := map[chub.AssetKind]string{chub.AssetCode: chub.ActionCodeRead, chub.AssetEnvironment: chub.ActionEnvRead}[kind]
	if err := s.authorizeAlso(r, action, a.ResourceID()); err != nil {
		return nil, err
	}
	return a, nil
}

// updateJob applies a PUT to an existing job: like Azure, only the
// description, tags, display name, properties and isArchived may change.
func (s *Server) updateJob(r *http.Request, j *chub.Job, req *jobRequest) (*chub.Job, bool, error) {
	old, in := j.Spec, req.spec
	immutable := []struct {
		field string
		same  bool
	}{
		{"command", old.Command == in.Command},
		{"computeId", strings.EqualFold(old.ComputeID, in.ComputeID)},
		{"codeId", strings.EqualFold(old.CodeID, in.CodeID)},
		{"environmentId", strings.EqualFold(old.EnvironmentID, in.EnvironmentID)},
		{"environmentVariables", maps.Equal(old.EnvironmentVariables, in.EnvironmentVariables)},
		{"inputs", maps.Equal(old.Inputs, in.Inputs)},
		{"outputs", reflect.DeepEqual(nilIfEmpty(old.Outputs), nilIfEmpty(in.Outputs))},
		{"limits.timeout", old.Timeout == in.Timeout},
		{"experimentName", strings.EqualFold(old.ExperimentName, in.ExperimentName)},
	}
	for _, f := range immutable {
		if !f.same {
			return nil, false, chub.Invalid("JobPropertyImmutable", "properties."+f.field,
				"the %s of job %q cannot change once it is submitted (only description, tags, displayName, properties and isArchived can); submit a new job with another name", f.field, j.Name)
		}
	}
	next := *j
	next.Spec.Description, next.Spec.Tags, next.Spec.DisplayName, next.Spec.Properties = in.Description, in.Tags, in.DisplayName, in.Properties
	if req.isArchived != nil && *req.isArchived != j.Archived {
		if *req.isArchived && !j.Status.Terminal() {
			return nil, false, chub.Conflict("JobNotEnded", "properties.isArchived",
				"job %q is %s: cancel it before archiving it, or DELETE it (which cancels, then archives)", j.Name, j.Status)
		}
		next.Archived = *req.isArchived
	}
	if next.Archived == j.Archived && next.Spec.Description == old.Description && next.Spec.DisplayName == old.DisplayName &&
		maps.Equal(next.Spec.Tags, old.Tags) && maps.Equal(next.Spec.Properties, old.Properties) {
		return j, false, nil
	}
	next.ModifiedBy, next.ModifiedAt = caller(r).Principal(), time.Now().UTC()
	if err := s.cfg.Store.UpdateJob(r.Context(), &next); err != nil {
		return nil, false, err
	}
	return &next, true, nil
}

func nilIfEmpty[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionJobRead, jobScope(ws, p["id"])); err != nil {
		return err
	}
	j, err := s.cfg.Store.GetJob(r.Context(), ws.Scope, p["id"])
	if err != nil {
		return err
	}
	return s.writeJob(w, r, http.StatusOK, j)
}

func (s *Server) writeJob(w http.ResponseWriter, r *http.Request, status int, j *chub.Job) error {
	pos, err := s.queuePositions(r.Context(), []*chub.Job{j})
	if err != nil {
		return err
	}
	writeJSON(w, status, s.jobJSON(r, j, pos))
	return nil
}

// queuePositions numbers, from 1, the waiting jobs among js in their
// instance's queue (submission order).
func (s *Server) queuePositions(ctx context.Context, js []*chub.Job) (map[string]int, error) {
	computes := map[string]bool{}
	for _, j := range js {
		if j.Status == chub.JobNotStarted || j.Status == chub.JobQueued {
			computes[j.ComputeID] = true
		}
	}
	pos := map[string]int{}
	for id := range computes {
		queue, err := s.cfg.Store.ListJobs(ctx, chub.JobFilter{ComputeID: id, Statuses: waitingJobStatuses, View: chub.JobViewAll})
		if err != nil {
			return nil, err
		}
		for i, q := range queue {
			pos[q.ID] = i + 1
		}
	}
	return pos, nil
}

type jobList struct {
	Value    []jobResource `json:"value"`
	NextLink *string       `json:"nextLink,omitempty"`
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	readErr := s.authorize(r, chub.ActionJobRead, ws.Scope.ResourceID()+"/jobs")
	q := r.URL.Query()
	skip, err := skipParam(r)
	if err != nil {
		return err
	}
	f := chub.JobFilter{Workspace: &ws.Scope, View: chub.JobViewActive, Tag: q.Get("tag")}
	if v := q.Get("listViewType"); v != "" {
		view, err := oneOfFold(v, "listViewType", string(chub.JobViewActive), string(chub.JobViewArchived), string(chub.JobViewAll))
		if err != nil {
			return err
		}
		f.View = chub.JobView(view)
	}
	all, err := s.cfg.Store.ListJobs(r.Context(), f)
	if err != nil {
		return err
	}
	compute := q.Get("compute")
	jobType := q.Get("jobType")
	var js []*chub.Job
	for i := len(all) - 1; i >= 0; i-- { // newest first, as Azure lists
		j := all[i]
		if compute != "" && !strings.EqualFold(j.Spec.ComputeID[strings.LastIndex(j.Spec.ComputeID, "/")+1:], compute) {
			continue
		}
		if jobType != "" && !strings.EqualFold(jobType, "Command") {
			continue
		}
		if readErr != nil {
			if ok, err := s.rbac().Permitted(r.Context(), caller(r), chub.ActionJobRead, j.ResourceID()); err != nil {
				return err
			} else if !ok {
				continue
			}
		}
		js = append(js, j)
	}
	if readErr != nil && len(js) == 0 && skip == 0 {
		return readErr
	}
	out := jobList{Value: []jobResource{}}
	if skip < len(js) {
		js = js[skip:]
	} else {
		js = nil
	}
	if len(js) > s.cfg.PageSize {
		js = js[:s.cfg.PageSize]
		next := nextLink(r, skip+s.cfg.PageSize)
		out.NextLink = &next
	}
	pos, err := s.queuePositions(r.Context(), js)
	if err != nil {
		return err
	}
	for _, j := range js {
		out.Value = append(out.Value, s.jobJSON(r, j, pos))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// skipParam reads $skip.
func skipParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("$skip")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, chub.Invalid("InvalidSkipToken", "$skip", "$skip must be a non-negative integer, got %q", v)
	}
	return n, nil
}

// nextLink is this request's URL with $skip set.
func nextLink(r *http.Request, skip int) string {
	q := r.URL.Query()
	q.Set("$skip", strconv.Itoa(skip))
	return baseURL(r) + r.URL.Path + "?" + q.Encode()
}

// oneOfFold returns the allowed value v names (case-insensitively).
func oneOfFold(v, target string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, nil
		}
	}
	return "", chub.Invalid("InvalidQueryParameter", target, "%s %q is not one of %s", target, v, strings.Join(allowed, ", "))
}

// jobLocation points a 202 at the job: GET it to see its status.
func (s *Server) jobLocation(w http.ResponseWriter, r *http.Request, j *chub.Job) {
	w.Header().Set("Location", baseURL(r)+j.ResourceID()+"?api-version="+url.QueryEscape(r.URL.Query().Get("api-version")))
	w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter.Seconds()+0.5)))
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionJobCancel, jobScope(ws, p["id"])); err != nil {
		return err
	}
	j, err := s.cfg.Store.GetJob(r.Context(), ws.Scope, p["id"])
	if err != nil {
		return err
	}
	auditResource(r, chub.ActionJobCancel, j.ResourceID())
	if !j.Status.Terminal() && j.Status != chub.JobCancelRequested {
		if _, err := s.jobsController().Cancel(r.Context(), j, caller(r).Principal(), ""); err != nil {
			return err
		}
	}
	s.jobLocation(w, r, j)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// deleteJob archives a job, canceling it first when it has not ended.
func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionJobDelete, jobScope(ws, p["id"])); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		j, err := s.cfg.Store.GetJob(r.Context(), ws.Scope, p["id"])
		if chub.IsNotFound(err) {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		if err != nil {
			return err
		}
		auditResource(r, chub.ActionJobDelete, j.ResourceID())
		if !j.Status.Terminal() && j.Status != chub.JobCancelRequested {
			if j, err = s.jobsController().Cancel(r.Context(), j, caller(r).Principal(), "the job was deleted"); err != nil {
				return err
			}
		}
		if !j.Archived {
			j.Archived = true
			j.ModifiedBy, j.ModifiedAt = caller(r).Principal(), time.Now().UTC()
			err = s.cfg.Store.UpdateJob(r.Context(), j)
			if chub.ErrorKind(err) == chub.KindConflict && attempt < 5 {
				continue // the controller moved it on: re-read
			}
			if err != nil {
				return err
			}
		}
		s.jobLocation(w, r, j)
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
}

// jobsController is the controller, which a server always has.
func (s *Server) jobsController() jobCanceler {
	if s.cfg.Jobs == nil {
		return noJobs{}
	}
	return s.cfg.Jobs
}

type jobCanceler interface {
	Cancel(ctx context.Context, j *chub.Job, by chub.Principal, reason string) (*chub.Job, error)
}

type noJobs struct{}

func (noJobs) Cancel(context.Context, *chub.Job, chub.Principal, string) (*chub.Job, error) {
	return nil, chub.Errorf(chub.KindUnavailable, "JobsUnavailable", "", "this server runs no job controller")
}

// studioJobURL is the job's page in Studio: /#/jobs/<workspace ARM id,
// escaped as one segment>/<name> (Studio's jobLinkFromHash reads it).
func studioJobURL(base string, j *chub.Job) string {
	return base + "/#/jobs/" + url.PathEscape(j.Scope.ResourceID()) + "/" + url.PathEscape(j.Name)
}
