package api

import (
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
	err := s.cfg.Store.DeleteWorkspace(r.Context(), scope)
	if chub.IsNotFound(err) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
