package api

import (
	"net/http"
	"strings"

	"github.com/computehub/chub"
)

// route is one endpoint. Literal path segments match case-insensitively,
// as ARM matches them; {name} segments capture.
type route struct {
	method  string
	pattern []string
	arm     bool // an ARM path: api-version required
	handle  func(w http.ResponseWriter, r *http.Request, p params) error
}

type params map[string]string

func (s *Server) add(method, pattern string, arm bool, h func(http.ResponseWriter, *http.Request, params) error) {
	s.routes = append(s.routes, route{method: method, pattern: strings.Split(strings.Trim(pattern, "/"), "/"), arm: arm, handle: h})
}

func (s *Server) match(r *http.Request) (route, params, error) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	pathMatched := false
	for _, rt := range s.routes {
		p, ok := matchPattern(rt.pattern, segs)
		if !ok {
			continue
		}
		pathMatched = true
		if rt.method == r.Method {
			return rt, p, nil
		}
	}
	if pathMatched {
		return route{}, nil, chub.Errorf(chub.KindInvalid, "MethodNotAllowed", "", "the method %s is not allowed on %s", r.Method, r.URL.Path)
	}
	return route{}, nil, chub.Errorf(chub.KindNotFound, "NotFound", "", "no API matches the path %s", r.URL.Path)
}

func matchPattern(pattern, segs []string) (params, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	p := params{}
	for i, pat := range pattern {
		if strings.HasPrefix(pat, "{") {
			if segs[i] == "" {
				return nil, false
			}
			p[strings.Trim(pat, "{}")] = segs[i]
			continue
		}
		if !strings.EqualFold(pat, segs[i]) {
			return nil, false
		}
	}
	return p, true
}

const (
	provider  = "providers/Microsoft.MachineLearningServices"
	wsPrefix  = "subscriptions/{sub}/resourceGroups/{rg}/" + provider + "/workspaces/{ws}"
	locPrefix = "subscriptions/{sub}/" + provider + "/locations/{loc}"
)

func (s *Server) addRoutes() {
	s.add("GET", "subscriptions/{sub}/"+provider+"/workspaces", true, s.listWorkspaces)
	s.add("GET", "subscriptions/{sub}/resourceGroups/{rg}/"+provider+"/workspaces", true, s.listWorkspaces)
	s.add("PUT", wsPrefix, true, s.putWorkspace)
	s.add("GET", wsPrefix, true, s.getWorkspace)
	s.add("DELETE", wsPrefix, true, s.deleteWorkspace)

	s.add("GET", wsPrefix+"/computes", true, s.listComputes)
	s.add("PUT", wsPrefix+"/computes/{name}", true, s.putCompute)
	s.add("GET", wsPrefix+"/computes/{name}", true, s.getCompute)
	s.add("DELETE", wsPrefix+"/computes/{name}", true, s.deleteCompute)
	s.add("POST", wsPrefix+"/computes/{name}/start", true, s.actCompute(chub.OpStart))
	s.add("POST", wsPrefix+"/computes/{name}/stop", true, s.actCompute(chub.OpStop))
	s.add("POST", wsPrefix+"/computes/{name}/restart", true, s.actCompute(chub.OpRestart))
	s.add("POST", wsPrefix+"/computes/{name}/listNodes", true, s.listNodes)
	s.add("GET", wsPrefix+"/computes/{name}/exec", true, s.exec)
	s.add("GET", wsPrefix+"/computes/{name}/terminal", true, s.terminal)
	s.add("POST", wsPrefix+"/computes/{name}/customServices", true, s.updateCustomServices)
	s.add("POST", wsPrefix+"/checkComputeNameAvailability", true, s.checkName)

	s.add("GET", locPrefix+"/vmSizes", true, s.vmSizes)
	s.add("GET", locPrefix+"/usages", true, s.usages)
	s.add("GET", locPrefix+"/quotas", true, s.quotas)
	s.add("POST", locPrefix+"/updateQuotas", true, s.updateQuotas)
	s.add("POST", wsPrefix+"/computes/{name}/resize", true, s.resizeCompute)
	s.add("GET", locPrefix+"/computeOperationsStatus/{op}", true, s.operationStatus)
	s.add("GET", locPrefix+"/computeOperationsResults/{op}", true, s.operationResult)

	s.add("PUT", wsPrefix+"/jobs/{id}", true, s.putJob)
	s.add("GET", wsPrefix+"/jobs/{id}", true, s.getJob)
	s.add("DELETE", wsPrefix+"/jobs/{id}", true, s.deleteJob)
	s.add("GET", wsPrefix+"/jobs", true, s.listJobs)
	s.add("POST", wsPrefix+"/jobs/{id}/cancel", true, s.cancelJob)
	s.add("GET", wsPrefix+"/jobs/{id}/logs", true, s.jobLogs)
	s.add("GET", wsPrefix+"/jobs/{id}/outputs", true, s.jobOutputs)
	for _, kind := range []chub.AssetKind{chub.AssetCode, chub.AssetEnvironment} {
		base := wsPrefix + "/" + string(kind)
		s.add("GET", base, true, s.listContainers(kind))
		s.add("GET", base+"/{name}", true, s.getContainer(kind))
		s.add("GET", base+"/{name}/versions", true, s.listVersions(kind))
		s.add("PUT", base+"/{name}/versions/{version}", true, s.putAsset(kind))
		s.add("GET", base+"/{name}/versions/{version}", true, s.getAsset(kind))
		s.add("DELETE", base+"/{name}/versions/{version}", true, s.deleteAsset(kind))
	}
	s.add("POST", wsPrefix+"/codes/{name}/versions/{version}/startPendingUpload", true, s.startPendingUpload)

	s.add("GET", "chub/v1/me", false, s.me)
	s.add("GET", "chub/v1/users", false, s.listUsers)
	s.add("POST", "chub/v1/users", false, s.createUser)
	s.add("POST", "chub/v1/users/{user}/tokens", false, s.createToken)
	s.add("GET", "chub/v1/users/{user}/tokens", false, s.listTokens)
	s.add("DELETE", "chub/v1/users/{user}/tokens/{token}", false, s.revokeToken)
	s.add("DELETE", "chub/v1/users/{user}", false, s.deleteUser)
	s.add("PUT", "chub/v1/users/{user}/password", false, s.setPassword)
	s.add("GET", "chub/v1/auditLogs", false, s.listAudit)
	s.add("DELETE", "chub/v1/session", false, s.endSession)
	s.add("GET", "chub/v1/permissions", false, s.permissions)
}
