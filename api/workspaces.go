package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/lifecycle"
)

func (s *Server) getWorkspace(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionWorkspaceRead, ws.Scope.ResourceID()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, workspaceJSON(ws))
	return nil
}

func (s *Server) listWorkspaces(w http.ResponseWriter, r *http.Request, p params) error {
	wss, err := s.cfg.Store.ListWorkspaces(r.Context(), p["sub"], p["rg"])
	if err != nil {
		return err
	}
	out := struct {
		Value []workspaceResource `json:"value"`
	}{Value: []workspaceResource{}}
	for _, ws := range wss {
		if s.authorize(r, chub.ActionWorkspaceRead, ws.Scope.ResourceID()) == nil {
			out.Value = append(out.Value, workspaceJSON(ws))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) putWorkspace(w http.ResponseWriter, r *http.Request, p params) error {
	scope := scopeOf(p)
	if err := s.authorize(r, chub.ActionWorkspaceWrite, scope.ResourceID()); err != nil {
		return err
	}
	if err := chub.ValidateWorkspaceName(scope.Workspace); err != nil {
		return err
	}
	var body struct {
		Location   string            `json:"location"`
		Tags       map[string]string `json:"tags"`
		Properties struct {
			Description  string `json:"description"`
			FriendlyName string `json:"friendlyName"`
		} `json:"properties"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Location != "" && !strings.EqualFold(strings.ReplaceAll(body.Location, " ", ""), s.cfg.Region) {
		return chub.Invalid("LocationNotAvailable", "location", "location %q is not served here; this server's region is %q", body.Location, s.cfg.Region)
	}
	if err := chub.ValidateTags(body.Tags); err != nil {
		return err
	}
	if err := chub.ValidateDescription(body.Properties.Description, "properties.description"); err != nil {
		return err
	}
	now := time.Now().UTC()
	ws := &chub.Workspace{ID: lifecycle.NewID(), Scope: scope, Location: s.cfg.Region, Description: body.Properties.Description,
		FriendlyName: body.Properties.FriendlyName, Tags: body.Tags, CreatedBy: caller(r).Principal(), CreatedAt: now, ModifiedAt: now}
	created, err := s.cfg.Store.PutWorkspace(r.Context(), ws)
	if err != nil {
		return err
	}
	ws, err = s.cfg.Store.GetWorkspace(r.Context(), scope)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, workspaceJSON(ws))
	return nil
}

func (s *Server) deleteWorkspace(w http.ResponseWriter, r *http.Request, p params) error {
	scope := scopeOf(p)
	if err := s.authorize(r, chub.ActionWorkspaceDelete, scope.ResourceID()); err != nil {
		return err
	}
	// The store forgets the workspace's jobs and codes with it; what is
	// kept of them on disk goes after it.
	jobIDs, blobIDs, err := s.workspaceArtifacts(r.Context(), scope)
	if err != nil && !chub.IsNotFound(err) {
		return err
	}
	err = s.cfg.Store.DeleteWorkspace(r.Context(), scope)
	if chub.IsNotFound(err) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	if a := s.cfg.Artifacts; a != nil {
		for _, id := range jobIDs {
			if err := a.RemoveJob(id); err != nil {
				s.log.Warn("delete workspace: remove a job's logs and outputs", "workspace", scope.Workspace, "job", id, "err", err)
			}
		}
		for _, id := range blobIDs {
			if err := a.RemoveBlob(id); err != nil {
				s.log.Warn("delete workspace: remove a code's upload", "workspace", scope.Workspace, "blob", id, "err", err)
			}
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// workspaceArtifacts lists the ids of a workspace's jobs and of the blobs
// its code versions hold, whose files the artifact store keeps.
func (s *Server) workspaceArtifacts(ctx context.Context, scope chub.WorkspaceScope) (jobIDs, blobIDs []string, err error) {
	const page = 1000
	for skip := 0; ; skip += page {
		js, err := s.cfg.Store.ListJobs(ctx, chub.JobFilter{Workspace: &scope, View: chub.JobViewAll, Page: chub.Page{Skip: skip, Limit: page}})
		if err != nil {
			return nil, nil, err
		}
		for _, j := range js {
			jobIDs = append(jobIDs, j.ID)
		}
		if len(js) < page {
			break
		}
	}
	for skip := 0; ; skip += page {
		as, err := s.cfg.Store.ListAssets(ctx, chub.AssetCode, scope, "", chub.Page{Skip: skip, Limit: page})
		if err != nil {
			return nil, nil, err
		}
		for _, a := range as {
			if i := strings.LastIndex(a.CodeURI, "/chub/v1/blobs/"); i >= 0 {
				blobIDs = append(blobIDs, a.CodeURI[i+len("/chub/v1/blobs/"):])
			}
		}
		if len(as) < page {
			break
		}
	}
	return jobIDs, blobIDs, nil
}
