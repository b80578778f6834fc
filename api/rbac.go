package api

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/access"
	"github.com/computehub/chub/lifecycle"
)

type permission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

type roleDefProps struct {
	RoleName         string       `json:"roleName"`
	Description      string       `json:"description"`
	Type             string       `json:"type"`
	Permissions      []permission `json:"permissions"`
	AssignableScopes []string     `json:"assignableScopes"`
}

type roleDefJSON struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Type       string       `json:"type"`
	Properties roleDefProps `json:"properties"`
}

const authzProvider = "/providers/Microsoft.Authorization"

func roleDefID(id string) string { return authzProvider + "/roleDefinitions/" + id }

func toRoleDefJSON(r chub.RoleDefinition) roleDefJSON {
	t := "BuiltInRole"
	if r.IsCustom {
		t = "CustomRole"
	}
	return roleDefJSON{ID: roleDefID(r.ID), Name: r.ID, Type: "Microsoft.Authorization/roleDefinitions",
		Properties: roleDefProps{RoleName: r.Name, Description: r.Description, Type: t,
			Permissions:      []permission{{Actions: nonNil(r.Actions), NotActions: nonNil(r.NotActions), DataActions: []string{}, NotDataActions: []string{}}},
			AssignableScopes: nonNil(r.AssignableScopes)}}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type roleAssignmentProps struct {
	RoleDefinitionID string    `json:"roleDefinitionId"`
	PrincipalID      string    `json:"principalId"`
	PrincipalType    string    `json:"principalType"`
	Scope            string    `json:"scope"`
	CreatedOn        time.Time `json:"createdOn"`
	CreatedBy        string    `json:"createdBy"`
}

type roleAssignmentJSON struct {
	ID         string              `json:"id"`
	Name       string              `json:"name"`
	Type       string              `json:"type"`
	Properties roleAssignmentProps `json:"properties"`
}

func assignmentPath(scope, id string) string {
	return strings.TrimRight(scope, "/") + authzProvider + "/roleAssignments/" + id
}

func toAssignmentJSON(a chub.RoleAssignment) roleAssignmentJSON {
	return roleAssignmentJSON{ID: assignmentPath(a.Scope, a.ID), Name: a.ID, Type: "Microsoft.Authorization/roleAssignments",
		Properties: roleAssignmentProps{RoleDefinitionID: roleDefID(a.RoleDefinitionID), PrincipalID: a.PrincipalID, PrincipalType: "User",
			Scope: a.Scope, CreatedOn: a.CreatedAt, CreatedBy: a.CreatedBy}}
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// validScope checks the shape of a role scope.
func validScope(scope string) error {
	if scope == "/" {
		return nil
	}
	parts := strings.Split(strings.Trim(scope, "/"), "/")
	if !strings.HasPrefix(scope, "/") || len(parts) < 2 || !strings.EqualFold(parts[0], "subscriptions") {
		return chub.Invalid("InvalidScope", "scope", "scope %q must be / or start with /subscriptions/{id}", scope)
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return chub.Invalid("InvalidScope", "scope", "scope %q has an empty, . or .. segment; give the resource's ARM id", scope)
		}
	}
	return nil
}

// serveAuthorization serves {scope}/providers/Microsoft.Authorization/...:
// roleDefinitions and roleAssignments, as Azure shapes them.
func (s *Server) serveAuthorization(w http.ResponseWriter, r *http.Request, scope, rest string) error {
	if err := checkAuthorizationAPIVersion(r); err != nil {
		return err
	}
	if err := validScope(scope); err != nil {
		return err
	}
	kind, id, _ := strings.Cut(rest, "/")
	switch {
	case strings.EqualFold(kind, "roleDefinitions") && id == "" && r.Method == http.MethodGet:
		return s.listRoleDefs(w, r, scope)
	case strings.EqualFold(kind, "roleDefinitions") && id != "" && r.Method == http.MethodGet:
		return s.getRoleDef(w, r, scope, id)
	case strings.EqualFold(kind, "roleDefinitions") && id != "" && r.Method == http.MethodPut:
		return s.putRoleDef(w, r, scope, id)
	case strings.EqualFold(kind, "roleDefinitions") && id != "" && r.Method == http.MethodDelete:
		return s.deleteRoleDef(w, r, scope, id)
	case strings.EqualFold(kind, "roleAssignments") && id == "" && r.Method == http.MethodGet:
		return s.listAssignments(w, r, scope)
	case strings.EqualFold(kind, "roleAssignments") && id != "" && r.Method == http.MethodGet:
		return s.getAssignment(w, r, scope, id)
	case strings.EqualFold(kind, "roleAssignments") && id != "" && r.Method == http.MethodPut:
		return s.putAssignment(w, r, scope, id)
	case strings.EqualFold(kind, "roleAssignments") && id != "" && r.Method == http.MethodDelete:
		return s.deleteAssignment(w, r, scope, id)
	}
	return chub.Errorf(chub.KindNotFound, "NotFound", "", "no API matches %s %s", r.Method, r.URL.Path)
}

func (s *Server) rbac() *access.RBAC { return &access.RBAC{Store: s.cfg.Store} }

func (s *Server) findRole(r *http.Request, idOrName string) (chub.RoleDefinition, error) {
	idOrName = idOrName[strings.LastIndex(idOrName, "/")+1:]
	roles, err := s.rbac().Roles(r.Context())
	if err != nil {
		return chub.RoleDefinition{}, err
	}
	for _, role := range roles {
		if strings.EqualFold(role.ID, idOrName) || strings.EqualFold(role.Name, idOrName) {
			return role, nil
		}
	}
	return chub.RoleDefinition{}, chub.NotFound("roleDefinitionId", "role definition %q does not exist", idOrName)
}

func (s *Server) listRoleDefs(w http.ResponseWriter, r *http.Request, scope string) error {
	if err := s.authorize(r, chub.ActionRoleDefRead, scope); err != nil {
		return err
	}
	roles, err := s.rbac().Roles(r.Context())
	if err != nil {
		return err
	}
	name := ""
	if f := r.URL.Query().Get("$filter"); strings.HasPrefix(f, "roleName eq ") {
		name = strings.Trim(strings.TrimPrefix(f, "roleName eq "), "'")
	}
	// As Azure, the roles that can be assigned at the scope, and for
	// whoever manages a scope, the custom ones made for scopes below it.
	out := []roleDefJSON{}
	for _, role := range roles {
		below := false
		for _, sc := range role.AssignableScopes {
			below = below || access.ScopeCovers(scope, sc)
		}
		if (name == "" || strings.EqualFold(role.Name, name)) && (role.AssignableAt(scope) || below) {
			out = append(out, toRoleDefJSON(role))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
	return nil
}

func (s *Server) getRoleDef(w http.ResponseWriter, r *http.Request, scope, id string) error {
	if err := s.authorize(r, chub.ActionRoleDefRead, scope); err != nil {
		return err
	}
	role, err := s.findRole(r, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRoleDefJSON(role))
	return nil
}

func (s *Server) putRoleDef(w http.ResponseWriter, r *http.Request, scope, id string) error {
	if !guidRE.MatchString(id) {
		return chub.Invalid("InvalidRoleDefinitionId", "name", "a role definition id must be a GUID, got %q", id)
	}
	var body struct {
		Properties roleDefProps `json:"properties"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	p := body.Properties
	role := chub.RoleDefinition{ID: strings.ToLower(id), Name: strings.TrimSpace(p.RoleName), IsCustom: true, Description: p.Description,
		AssignableScopes: p.AssignableScopes}
	for _, perm := range p.Permissions {
		role.Actions = append(role.Actions, perm.Actions...)
		role.NotActions = append(role.NotActions, perm.NotActions...)
	}
	switch {
	case role.Name == "":
		return chub.Invalid("InvalidRoleDefinition", "properties.roleName", "a custom role needs a roleName")
	case len(role.Actions) == 0:
		return chub.Invalid("InvalidRoleDefinition", "properties.permissions", "a custom role needs at least one action")
	case len(role.AssignableScopes) == 0:
		return chub.Invalid("InvalidRoleDefinition", "properties.assignableScopes", "a custom role needs at least one assignable scope")
	}
	for _, b := range access.BuiltinRoles() {
		if strings.EqualFold(b.Name, role.Name) || strings.EqualFold(b.ID, role.ID) {
			return chub.Conflict("RoleDefinitionExists", "properties.roleName", "%q is a built-in role and cannot be redefined", b.Name)
		}
	}
	for _, sc := range role.AssignableScopes {
		if err := validScope(sc); err != nil {
			return err
		}
	}
	// As in Azure, changing a role needs write on every scope it was
	// assignable at and every scope it will be: whoever controls only some
	// of them must not change what it grants at the others.
	old, err := s.customRole(r, role.ID)
	if err != nil {
		return err
	}
	check := role.AssignableScopes
	if old != nil {
		check = append(append([]string(nil), old.AssignableScopes...), role.AssignableScopes...)
	}
	for _, sc := range check {
		if err := s.authorize(r, chub.ActionRoleDefWrite, sc); err != nil {
			return err
		}
	}
	// The store refuses to narrow the role below the scopes where it is
	// assigned (RoleDefinitionHasAssignments).
	if err := s.cfg.Store.PutRoleDefinition(r.Context(), role); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toRoleDefJSON(role))
	return nil
}

// customRole returns the stored custom role with this id, nil when none.
func (s *Server) customRole(r *http.Request, id string) (*chub.RoleDefinition, error) {
	custom, err := s.cfg.Store.ListRoleDefinitions(r.Context())
	if err != nil {
		return nil, err
	}
	for _, c := range custom {
		if strings.EqualFold(c.ID, id) {
			return &c, nil
		}
	}
	return nil, nil
}

// deleteRoleDef deletes a custom role. It is authorized on every scope the
// role is assignable at, whatever the URL's scope: a role assignable at /
// is everyone's, and only who may write at / deletes it.
func (s *Server) deleteRoleDef(w http.ResponseWriter, r *http.Request, scope, id string) error {
	role, err := s.findRole(r, id)
	if chub.IsNotFound(err) {
		if err := s.authorize(r, chub.ActionRoleDefDelete, scope); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	if !role.IsCustom {
		if err := s.authorize(r, chub.ActionRoleDefDelete, scope); err != nil {
			return err
		}
		return chub.Invalid("CannotDeleteBuiltInRole", "roleDefinitionId", "%q is a built-in role and cannot be deleted", role.Name)
	}
	for _, sc := range role.AssignableScopes {
		if err := s.authorize(r, chub.ActionRoleDefDelete, sc); err != nil {
			return err
		}
	}
	if err := s.cfg.Store.DeleteRoleDefinition(r.Context(), role.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRoleDefJSON(role))
	return nil
}

func (s *Server) listAssignments(w http.ResponseWriter, r *http.Request, scope string) error {
	if err := s.authorize(r, chub.ActionRoleAssignRead, scope); err != nil {
		return err
	}
	principal := ""
	atScope := false
	if f := r.URL.Query().Get("$filter"); f != "" {
		switch {
		case strings.HasPrefix(f, "principalId eq "):
			principal = strings.Trim(strings.TrimPrefix(f, "principalId eq "), "'")
		case f == "atScope()":
			atScope = true
		default:
			return chub.Invalid("InvalidFilter", "$filter", "$filter supports principalId eq '{id}' and atScope(), got %q", f)
		}
	}
	all, err := s.cfg.Store.ListRoleAssignments(r.Context(), principal)
	if err != nil {
		return err
	}
	out := []roleAssignmentJSON{}
	for _, a := range all {
		above := access.ScopeCovers(a.Scope, scope)
		below := access.ScopeCovers(scope, a.Scope)
		if above || (below && !atScope) {
			out = append(out, toAssignmentJSON(a))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
	return nil
}

func (s *Server) findAssignment(r *http.Request, id string) (chub.RoleAssignment, error) {
	all, err := s.cfg.Store.ListRoleAssignments(r.Context(), "")
	if err != nil {
		return chub.RoleAssignment{}, err
	}
	for _, a := range all {
		if strings.EqualFold(a.ID, id) {
			return a, nil
		}
	}
	return chub.RoleAssignment{}, chub.NotFound("roleAssignmentId", "role assignment %s does not exist", id)
}

func (s *Server) getAssignment(w http.ResponseWriter, r *http.Request, scope, id string) error {
	if err := s.authorize(r, chub.ActionRoleAssignRead, scope); err != nil {
		return err
	}
	a, err := s.findAssignment(r, id)
	if err != nil {
		return err
	}
	// The assignment must be at or below the URL's scope, and the caller
	// may read assignments at its own scope.
	if !access.ScopeCovers(scope, a.Scope) {
		return chub.NotFound("roleAssignmentId", "role assignment %s is not at or below %s", id, scope)
	}
	if err := s.authorize(r, chub.ActionRoleAssignRead, a.Scope); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAssignmentJSON(a))
	return nil
}

func (s *Server) putAssignment(w http.ResponseWriter, r *http.Request, scope, id string) error {
	if err := s.authorize(r, chub.ActionRoleAssignWrite, scope); err != nil {
		return err
	}
	if !guidRE.MatchString(id) {
		return chub.Invalid("InvalidRoleAssignmentId", "name", "a role assignment id must be a GUID, got %q", id)
	}
	var body struct {
		Properties struct {
			RoleDefinitionID string `json:"roleDefinitionId"`
			PrincipalID      string `json:"principalId"`
		} `json:"properties"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	role, err := s.findRole(r, body.Properties.RoleDefinitionID)
	if chub.IsNotFound(err) {
		return chub.Invalid("RoleDefinitionDoesNotExist", "properties.roleDefinitionId", "role definition %q does not exist (chub role definition list)", body.Properties.RoleDefinitionID)
	}
	if err != nil {
		return err
	}
	if !role.AssignableAt(scope) {
		return chub.Invalid("InvalidScope", "scope", "role %q cannot be assigned at %s; its assignable scopes are %s", role.Name, scope, strings.Join(role.AssignableScopes, ", "))
	}
	if _, err := s.cfg.Store.UserByID(r.Context(), body.Properties.PrincipalID); err != nil {
		return chub.Invalid("PrincipalNotFound", "properties.principalId", "principal %q does not exist (chub user list shows object ids)", body.Properties.PrincipalID)
	}
	a := chub.RoleAssignment{ID: strings.ToLower(id), PrincipalID: body.Properties.PrincipalID, RoleDefinitionID: role.ID, Scope: scope,
		CreatedAt: time.Now().UTC(), CreatedBy: caller(r).ID}
	if err := s.cfg.Store.CreateRoleAssignment(r.Context(), a); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toAssignmentJSON(a))
	return nil
}

func (s *Server) deleteAssignment(w http.ResponseWriter, r *http.Request, scope, id string) error {
	if err := s.authorize(r, chub.ActionRoleAssignDelete, scope); err != nil {
		return err
	}
	a, err := s.findAssignment(r, id)
	if chub.IsNotFound(err) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	if !access.ScopeCovers(scope, a.Scope) {
		return chub.NotFound("roleAssignmentId", "role assignment %s is not at or below %s", id, scope)
	}
	if err := s.authorize(r, chub.ActionRoleAssignDelete, a.Scope); err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteRoleAssignment(r.Context(), a.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAssignmentJSON(a))
	return nil
}

// Grant assigns a role to a user at a scope, for the bootstrap and for
// users created as administrators.
func Grant(ctx context.Context, store chub.Store, userID, roleID, scope, by string) error {
	return store.CreateRoleAssignment(ctx, chub.RoleAssignment{ID: lifecycle.NewID(), PrincipalID: userID, RoleDefinitionID: roleID,
		Scope: scope, CreatedAt: time.Now().UTC(), CreatedBy: by})
}

// AuthorizationAPIVersions are Microsoft.Authorization's published
// api-versions of roleDefinitions and roleAssignments, which its official
// clients send (@azure/arm-authorization: 2022-04-01). The Machine
// Learning versions (APIVersions) are accepted there too: ComputeHub's
// own clients send one version everywhere.
var AuthorizationAPIVersions = []string{
	"2015-07-01", "2018-01-01-preview", "2018-07-01-preview", "2018-09-01-preview",
	"2020-03-01-preview", "2020-04-01-preview", "2020-08-01-preview", "2020-10-01-preview",
	"2021-04-01-preview", "2022-01-01-preview", "2022-04-01", "2022-05-01-preview",
}

func checkAuthorizationAPIVersion(r *http.Request) error {
	v := strings.ToLower(r.URL.Query().Get("api-version"))
	if v == "" {
		return checkAPIVersion(r) // names the parameter as missing
	}
	for _, known := range AuthorizationAPIVersions {
		if v == known {
			return nil
		}
	}
	if err := checkAPIVersion(r); err != nil {
		return chub.Invalid("InvalidApiVersionParameter", "api-version", "the api-version '%s' is not a supported version of Microsoft.Authorization; use one of '%s' (or a Microsoft.MachineLearningServices version)",
			r.URL.Query().Get("api-version"), strings.Join(AuthorizationAPIVersions, ", "))
	}
	return nil
}
