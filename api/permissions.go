package api

import (
	"net/http"
	"strings"

	"github.com/computehub/chub"
)

// permissions answers which of some actions the caller may do at a scope
// (GET /chub/v1/permissions?scope=ARMID&actions=a,b,c), so that Studio
// shows only the buttons that would work: {"allowed":{"action":bool}}.
func (s *Server) permissions(w http.ResponseWriter, r *http.Request, _ params) error {
	scope := r.URL.Query().Get("scope")
	if scope == "" {
		scope = chub.RootScope
	}
	var actions []string
	for _, a := range strings.Split(r.URL.Query().Get("actions"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			actions = append(actions, a)
		}
	}
	if len(actions) == 0 {
		return chub.Errorf(chub.KindInvalid, "InvalidQueryParameter", "actions", "the actions query parameter must list one or more actions, separated by commas")
	}
	if len(actions) > 50 {
		return chub.Errorf(chub.KindInvalid, "InvalidQueryParameter", "actions", "at most 50 actions may be asked at once; %d were", len(actions))
	}
	allowed := map[string]bool{}
	for _, a := range actions {
		ok, err := s.rbac().Permitted(r.Context(), caller(r), a, scope)
		if err != nil {
			return err
		}
		allowed[a] = ok
	}
	writeJSON(w, http.StatusOK, map[string]any{"scope": scope, "allowed": allowed})
	return nil
}
