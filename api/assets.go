package api

import (
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/lifecycle"
)

// Codes and environments: the versioned assets a job names. A code
// version's content is a blob uploaded to this server; an environment
// version names an image of the runtime (jobs run in their instance's own
// software, so it must be the instance's image).

var assetActions = map[chub.AssetKind]struct{ read, write, delete string }{
	chub.AssetCode:        {chub.ActionCodeRead, chub.ActionCodeWrite, chub.ActionCodeDelete},
	chub.AssetEnvironment: {chub.ActionEnvRead, chub.ActionEnvWrite, chub.ActionEnvDelete},
}

var assetWhat = map[chub.AssetKind]string{chub.AssetCode: "code", chub.AssetEnvironment: "environment"}

const assetTypePrefix = "Microsoft.MachineLearningServices/workspaces/"

func checkAssetName(kind chub.AssetKind, name, version string) error {
	if !assetNameRE.MatchString(name) {
		return chub.Invalid("InvalidAssetName", "name", "%s name %q must be 1 to 255 letters, digits, '-', '_' or '.', starting with a letter or digit", assetWhat[kind], name)
	}
	if version != "" && !assetNameRE.MatchString(version) {
		return chub.Invalid("InvalidAssetVersion", "version", "%s version %q must be 1 to 255 letters, digits, '-', '_' or '.', starting with a letter or digit", assetWhat[kind], version)
	}
	return nil
}

func assetScope(ws *chub.Workspace, kind chub.AssetKind, name, version string) string {
	id := ws.Scope.ResourceID() + "/" + string(kind) + "/" + name
	if version != "" {
		id += "/versions/" + version
	}
	return id
}

// assetVersionJSON is a code or environment version in Azure's shape.
type assetVersionJSON struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	SystemData systemData     `json:"systemData"`
	Properties map[string]any `json:"properties"`
}

func assetJSON(a *chub.AssetVersion) assetVersionJSON {
	props := map[string]any{
		"description": optString(a.Description), "tags": emptyIfNil(a.Tags), "properties": emptyIfNil(a.Properties),
		"isAnonymous": false, "isArchived": a.IsArchived, "provisioningState": "Succeeded",
	}
	switch a.Kind {
	case chub.AssetCode:
		props["codeUri"] = a.CodeURI
	case chub.AssetEnvironment:
		props["image"] = showImage(a.Image)
		props["osType"] = "Linux"
		props["autoRebuild"] = "Disabled"
		props["environmentType"] = "UserCreated"
		props["condaFile"] = nil
		props["build"] = nil
		props["inferenceConfig"] = nil
	}
	return assetVersionJSON{
		ID: a.ResourceID(), Name: a.Version, Type: assetTypePrefix + string(a.Kind) + "/versions",
		SystemData: sysData(a.CreatedBy, a.CreatedAt, a.CreatedBy, a.ModifiedAt), Properties: props,
	}
}

// putAsset is PUT .../codes|environments/{name}/versions/{version}.
func (s *Server) putAsset(kind chub.AssetKind) func(http.ResponseWriter, *http.Request, params) error {
	return func(w http.ResponseWriter, r *http.Request, p params) error {
		ws, err := s.workspace(r, p)
		if err != nil {
			return err
		}
		name, version := p["name"], p["version"]
		if err := checkAssetName(kind, name, version); err != nil {
			return err
		}
		if err := s.authorize(r, assetActions[kind].write, assetScope(ws, kind, name, version)); err != nil {
			return err
		}
		body, err := readBody(r)
		if err != nil {
			return err
		}
		if body == nil {
			return chub.Invalid("InvalidRequestContent", "", "the request body is empty; send the %s version as JSON", assetWhat[kind])
		}
		in, err := parseAssetBody(kind, body)
		if err != nil {
			return err
		}
		existing, err := s.cfg.Store.GetAsset(r.Context(), kind, ws.Scope, name, version)
		if err != nil && !chub.IsNotFound(err) {
			return err
		}
		var a *chub.AssetVersion
		if existing != nil {
			if a, err = s.updateAsset(r, ws, existing, in); err != nil {
				return err
			}
		} else {
			if a, err = s.newAsset(r, ws, kind, name, version, in); err != nil {
				return err
			}
		}
		created, err := s.cfg.Store.PutAsset(r.Context(), a)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		writeJSON(w, status, assetJSON(a))
		return nil
	}
}

// assetRequest is a validated asset PUT body.
type assetRequest struct {
	codeURI, image, description string
	hasCodeURI, hasImage        bool
	tags, properties            map[string]string
	isArchived                  *bool
}

func parseAssetBody(kind chub.AssetKind, body []byte) (*assetRequest, error) {
	top, err := parseBody(body)
	if err != nil {
		return nil, err
	}
	if err := top.allow("properties", "id", "name", "type", "systemData"); err != nil {
		return nil, err
	}
	p, err := top.obj("properties")
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, chub.Invalid("InvalidRequestContent", "properties", "the %s version's properties are required", assetWhat[kind])
	}
	common := []string{"description", "tags", "properties", "isAnonymous", "isArchived", "provisioningState", "stage"}
	in := &assetRequest{}
	switch kind {
	case chub.AssetCode:
		if err := p.allow(append(common, "codeUri")...); err != nil {
			return nil, err
		}
		in.hasCodeURI = p.has("codeUri")
		if in.codeURI, err = p.str("codeUri"); err != nil {
			return nil, err
		}
	case chub.AssetEnvironment:
		if err := p.allow(append(common, "image", "osType", "autoRebuild", "condaFile", "build", "inferenceConfig", "environmentType")...); err != nil {
			return nil, err
		}
		const why = "a job runs in its instance's own software; install packages in the instance (pip, conda) and they are there for its jobs"
		if err := p.refuse(why, "condaFile", "build", "inferenceConfig"); err != nil {
			return nil, err
		}
		os, err := p.str("osType")
		if err != nil {
			return nil, err
		}
		if os != "" && !strings.EqualFold(os, "Linux") {
			return nil, chub.Invalid("UnsupportedProperty", "properties.osType", "osType %q is not supported: instances run Linux", os)
		}
		rebuild, err := p.str("autoRebuild")
		if err != nil {
			return nil, err
		}
		if rebuild != "" && !strings.EqualFold(rebuild, "Disabled") {
			return nil, chub.Invalid("UnsupportedProperty", "properties.autoRebuild", "autoRebuild %q is not supported: %s", rebuild, why)
		}
		in.hasImage = p.has("image")
		if in.image, err = p.str("image"); err != nil {
			return nil, err
		}
	}
	anon, err := p.boolean("isAnonymous")
	if err != nil {
		return nil, err
	}
	if anon != nil && *anon {
		return nil, chub.Invalid("UnsupportedProperty", "properties.isAnonymous", "anonymous %s versions are not supported: give the version a name and a version (isAnonymous false)", assetWhat[kind])
	}
	if err := p.refuse("asset stages are not kept", "stage"); err != nil {
		return nil, err
	}
	if in.description, in.tags, in.properties, in.isArchived, err = p.resourceBase(); err != nil {
		return nil, err
	}
	return in, nil
}

var imageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func (s *Server) newAsset(r *http.Request, ws *chub.Workspace, kind chub.AssetKind, name, version string, in *assetRequest) (*chub.AssetVersion, error) {
	now := time.Now().UTC()
	a := &chub.AssetVersion{
		ID: lifecycle.NewID(), Kind: kind, WorkspaceID: ws.ID, Scope: ws.Scope, Name: name, Version: version,
		Description: in.description, Tags: in.tags, Properties: in.properties,
		CreatedBy: caller(r).Principal(), CreatedAt: now, ModifiedAt: now,
	}
	if in.isArchived != nil {
		a.IsArchived = *in.isArchived
	}
	switch kind {
	case chub.AssetCode:
		if !in.hasCodeURI {
			return nil, chub.Invalid("InvalidCodeUri", "properties.codeUri",
				"properties.codeUri is required: upload the code first (POST .../codes/%s/versions/%s/startPendingUpload, then PUT the tar.gz to its sasUri) and give the blobUri", name, version)
		}
		uri, err := s.checkCodeURI(r, ws, in.codeURI)
		if err != nil {
			return nil, err
		}
		a.CodeURI = uri
	case chub.AssetEnvironment:
		if err := s.checkImage(in.image); err != nil {
			return nil, err
		}
		a.Image = in.image
	}
	return a, nil
}

func (s *Server) checkImage(image string) error {
	if image == "" {
		return nil
	}
	if s.cfg.Lifecycle != nil && s.cfg.Lifecycle.CheckImage != nil {
		if err := s.cfg.Lifecycle.CheckImage(image); err != nil {
			return retargetTo(err, "properties.image")
		}
		return nil
	}
	if !imageRE.MatchString(image) {
		return chub.Invalid("InvalidImageName", "properties.image", "image %q is not an image name of this server (lower-case letters, digits, '.', '_', '-'); jobs run in their instance's image", image)
	}
	return nil
}

// retargetTo sets the target of a chub error.
func retargetTo(err error, target string) error {
	if e, ok := err.(*chub.Error); ok {
		c := *e
		c.Target = target
		return &c
	}
	return err
}

func (s *Server) updateAsset(r *http.Request, ws *chub.Workspace, a *chub.AssetVersion, in *assetRequest) (*chub.AssetVersion, error) {
	next := *a
	switch a.Kind {
	case chub.AssetCode:
		if in.hasCodeURI {
			uri, err := s.checkCodeURI(r, ws, in.codeURI)
			if err != nil {
				return nil, err
			}
			if uri != a.CodeURI {
				return nil, chub.Conflict("CodeVersionImmutable", "properties.codeUri",
					"code %s version %s holds %s; a version's content cannot change: create a new version for new code", a.Name, a.Version, a.CodeURI)
			}
		}
	case chub.AssetEnvironment:
		if in.hasImage && imageKey(in.image) != imageKey(a.Image) {
			return nil, chub.Conflict("EnvironmentVersionImmutable", "properties.image",
				"environment %s version %s has image %q; a version's image cannot change: create a new version", a.Name, a.Version, showImage(a.Image))
		}
	}
	next.Description, next.Tags, next.Properties = in.description, in.tags, in.properties
	if in.isArchived != nil {
		next.IsArchived = *in.isArchived
	}
	if next.Description != a.Description || !maps.Equal(next.Tags, a.Tags) || !maps.Equal(next.Properties, a.Properties) || next.IsArchived != a.IsArchived {
		next.ModifiedAt = time.Now().UTC()
	}
	return &next, nil
}

// checkCodeURI checks that uri is the blobUri of a ready blob of this
// workspace and returns it in its canonical form.
func (s *Server) checkCodeURI(r *http.Request, ws *chub.Workspace, uri string) (string, error) {
	const t = "properties.codeUri"
	base := baseURL(r) + "/chub/v1/blobs/"
	bad := func(format string, args ...any) error {
		return chub.Invalid("InvalidCodeUri", t, format+"; upload the code with startPendingUpload and give its blobUri (%s<id>)", append(args, base)...)
	}
	u, err := url.Parse(uri)
	if err != nil || len(uri) < len(base) || !strings.EqualFold(uri[:len(base)], base) {
		return "", bad("codeUri %q is not a blob of this server", uri)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", bad("codeUri must be the blobUri, without a query (never the sasUri, whose sig is a secret)")
	}
	id := uri[len(base):]
	if !blobIDRE.MatchString(id) {
		return "", bad("codeUri %q does not name a blob", uri)
	}
	b, err := s.cfg.Store.GetBlob(r.Context(), id)
	if chub.IsNotFound(err) || err == nil && b.WorkspaceID != ws.ID {
		return "", bad("blob %s was not found in workspace %q", id, ws.Scope.Workspace)
	}
	if err != nil {
		return "", err
	}
	if !b.Ready {
		return "", bad("blob %s has not been uploaded yet: PUT the tar.gz to the sasUri first", id)
	}
	return base + id, nil
}

func (s *Server) getAsset(kind chub.AssetKind) func(http.ResponseWriter, *http.Request, params) error {
	return func(w http.ResponseWriter, r *http.Request, p params) error {
		ws, err := s.workspace(r, p)
		if err != nil {
			return err
		}
		if err := s.authorize(r, assetActions[kind].read, assetScope(ws, kind, p["name"], p["version"])); err != nil {
			return err
		}
		a, err := s.cfg.Store.GetAsset(r.Context(), kind, ws.Scope, p["name"], p["version"])
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, assetJSON(a))
		return nil
	}
}

func (s *Server) deleteAsset(kind chub.AssetKind) func(http.ResponseWriter, *http.Request, params) error {
	return func(w http.ResponseWriter, r *http.Request, p params) error {
		ws, err := s.workspace(r, p)
		if err != nil {
			return err
		}
		if err := s.authorize(r, assetActions[kind].delete, assetScope(ws, kind, p["name"], p["version"])); err != nil {
			return err
		}
		a, err := s.cfg.Store.GetAsset(r.Context(), kind, ws.Scope, p["name"], p["version"])
		if chub.IsNotFound(err) {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		if err != nil {
			return err
		}
		if kind == chub.AssetCode {
			// A waiting job copies its code when it starts: keep it until then.
			waiting, err := s.cfg.Store.ListJobs(r.Context(), chub.JobFilter{Workspace: &ws.Scope, Statuses: waitingJobStatuses, View: chub.JobViewAll})
			if err != nil {
				return err
			}
			for _, j := range waiting {
				if strings.EqualFold(j.Spec.CodeID, a.ResourceID()) {
					return chub.Conflict("AssetInUse", "version",
						"job %q (%s) will run code %s version %s when it starts; cancel it or let it start, then delete the version", j.Name, j.Status, a.Name, a.Version)
				}
			}
		}
		if err := s.cfg.Store.DeleteAsset(r.Context(), kind, ws.Scope, a.Name, a.Version); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
}

type assetList struct {
	Value    []any   `json:"value"`
	NextLink *string `json:"nextLink,omitempty"`
}

// listVersions is GET .../codes|environments/{name}/versions: newest first.
func (s *Server) listVersions(kind chub.AssetKind) func(http.ResponseWriter, *http.Request, params) error {
	return func(w http.ResponseWriter, r *http.Request, p params) error {
		ws, err := s.workspace(r, p)
		if err != nil {
			return err
		}
		if err := s.authorize(r, assetActions[kind].read, assetScope(ws, kind, p["name"], "")); err != nil {
			return err
		}
		vs, err := s.cfg.Store.ListAssets(r.Context(), kind, ws.Scope, p["name"], chub.Page{})
		if err != nil {
			return err
		}
		vs, err = filterArchived(r, vs)
		if err != nil {
			return err
		}
		sortNewest(vs)
		items := make([]any, 0, len(vs))
		for _, a := range vs {
			items = append(items, assetJSON(a))
		}
		return s.writePage(w, r, items)
	}
}

// filterArchived applies listViewType (default ActiveOnly).
func filterArchived(r *http.Request, vs []*chub.AssetVersion) ([]*chub.AssetVersion, error) {
	view := chub.JobViewActive
	if v := r.URL.Query().Get("listViewType"); v != "" {
		got, err := oneOfFold(v, "listViewType", string(chub.JobViewActive), string(chub.JobViewArchived), string(chub.JobViewAll))
		if err != nil {
			return nil, err
		}
		view = chub.JobView(got)
	}
	var out []*chub.AssetVersion
	for _, a := range vs {
		if view == chub.JobViewAll || (view == chub.JobViewArchived) == a.IsArchived {
			out = append(out, a)
		}
	}
	return out, nil
}

func sortNewest(vs []*chub.AssetVersion) {
	sort.SliceStable(vs, func(i, j int) bool {
		if !vs[i].CreatedAt.Equal(vs[j].CreatedAt) {
			return vs[i].CreatedAt.After(vs[j].CreatedAt)
		}
		return vs[i].Version > vs[j].Version
	})
}

// writePage answers one page of items ($skip, $top, Config.PageSize).
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, items []any) error {
	skip, err := skipParam(r)
	if err != nil {
		return err
	}
	size := s.cfg.PageSize
	if v := r.URL.Query().Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return chub.Invalid("InvalidQueryParameter", "$top", "$top must be a positive number, got %q", v)
		}
		size = min(size, n)
	}
	out := assetList{Value: []any{}}
	if skip < len(items) {
		items = items[skip:]
	} else {
		items = nil
	}
	if len(items) > size {
		items = items[:size]
		next := nextLink(r, skip+size)
		out.NextLink = &next
	}
	out.Value = append(out.Value, items...)
	writeJSON(w, http.StatusOK, out)
	return nil
}

type assetContainerJSON struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	SystemData systemData     `json:"systemData"`
	Properties map[string]any `json:"properties"`
}

// containers groups versions (newest first) by name.
func containers(ws *chub.Workspace, kind chub.AssetKind, vs []*chub.AssetVersion) []assetContainerJSON {
	sortNewest(vs)
	var out []assetContainerJSON
	seen := map[string]bool{}
	for _, a := range vs {
		key := strings.ToLower(a.Name)
		if seen[key] {
			continue
		}
		seen[key] = true
		var next *string
		if n, err := strconv.ParseInt(a.Version, 10, 64); err == nil && n >= 0 {
			v := strconv.FormatInt(n+1, 10)
			next = &v
		}
		out = append(out, assetContainerJSON{
			ID: assetScope(ws, kind, a.Name, ""), Name: a.Name, Type: assetTypePrefix + string(kind),
			SystemData: sysData(a.CreatedBy, a.CreatedAt, a.CreatedBy, a.ModifiedAt),
			Properties: map[string]any{"description": nil, "tags": map[string]string{}, "properties": map[string]string{},
				"isArchived": false, "latestVersion": a.Version, "nextVersion": next, "provisioningState": "Succeeded"},
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out
}

// listContainers is GET .../codes|environments: one entry per name.
func (s *Server) listContainers(kind chub.AssetKind) func(http.ResponseWriter, *http.Request, params) error {
	return func(w http.ResponseWriter, r *http.Request, p params) error {
		ws, err := s.workspace(r, p)
		if err != nil {
			return err
		}
		if err := s.authorize(r, assetActions[kind].read, ws.Scope.ResourceID()+"/"+string(kind)); err != nil {
			return err
		}
		vs, err := s.cfg.Store.ListAssets(r.Context(), kind, ws.Scope, "", chub.Page{})
		if err != nil {
			return err
		}
		vs, err = filterArchived(r, vs)
		if err != nil {
			return err
		}
		cs := containers(ws, kind, vs)
		items := make([]any, 0, len(cs))
		for _, c := range cs {
			items = append(items, c)
		}
		return s.writePage(w, r, items)
	}
}

// getContainer is GET .../codes|environments/{name}.
func (s *Server) getContainer(kind chub.AssetKind) func(http.ResponseWriter, *http.Request, params) error {
	return func(w http.ResponseWriter, r *http.Request, p params) error {
		ws, err := s.workspace(r, p)
		if err != nil {
			return err
		}
		if err := s.authorize(r, assetActions[kind].read, assetScope(ws, kind, p["name"], "")); err != nil {
			return err
		}
		vs, err := s.cfg.Store.ListAssets(r.Context(), kind, ws.Scope, p["name"], chub.Page{})
		if err != nil {
			return err
		}
		cs := containers(ws, kind, vs)
		if len(cs) == 0 {
			return chub.NotFound("name", "%s %q was not found in workspace %q", assetWhat[kind], p["name"], ws.Scope.Workspace)
		}
		writeJSON(w, http.StatusOK, cs[0])
		return nil
	}
}
