package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/apps"
)

// applications is the instance's applications list: the catalog
// applications its image offers (as the agent last reported them), then its
// custom services, each on the instance's own origin (Config.AppURL).
func (s *Server) applications(c *chub.Compute) []application {
	at := s.cfg.AppURL
	if at == nil {
		at = func(instance, app string) string {
			return "https://" + strings.ToLower(instance) + ".apps.localhost" + apps.BasePath(app)
		}
	}
	out := []application{}
	for _, name := range c.Observed.Applications {
		if a, ok := apps.Lookup(name); ok {
			out = append(out, application{DisplayName: a.DisplayName, EndpointURI: at(c.Name, a.Name)})
		}
	}
	for _, cs := range c.Settings.CustomServices {
		if _, builtin := apps.Lookup(cs.Name); !builtin && cs.Name != apps.Terminal && apps.NameRE.MatchString(cs.Name) {
			out = append(out, application{DisplayName: cs.Name, EndpointURI: at(c.Name, cs.Name)})
		}
	}
	return out
}

// checkCustomServices checks that each custom service can run as an
// application (see apps.CustomFromAzure for the mapping).
func checkCustomServices(c *chub.Compute, list []chub.CustomService) error {
	seen := map[string]bool{}
	for i, cs := range list {
		target := fmt.Sprintf("customServices[%d]", i)
		raw, _ := json.Marshal(cs)
		custom, err := apps.CustomFromAzure(raw)
		if err == nil {
			_, err = apps.CustomSpec(custom)
		}
		if err != nil {
			return chub.Invalid("InvalidCustomService", target, "custom service %q: %v", cs.Name, err)
		}
		if seen[cs.Name] {
			return chub.Invalid("InvalidCustomService", target+".name", "two custom services are named %q", cs.Name)
		}
		seen[cs.Name] = true
	}
	return nil
}

// updateCustomServices answers POST .../computes/{name}/customServices: the
// body, a list of custom services, replaces the instance's. Their commands
// run inside the instance, so only its user may change them: an
// administrator manages an instance but does not run code in it (the same
// rule as for opening it).
func (s *Server) updateCustomServices(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionComputeWrite, ws.Scope.ResourceID()+"/computes/"+p["name"]); err != nil {
		return err
	}
	var list []chub.CustomService
	if err := decode(r, &list); err != nil {
		return err
	}
	if list == nil {
		list = []chub.CustomService{}
	}
	for attempt := 0; ; attempt++ {
		c, err := s.cfg.Store.GetCompute(r.Context(), ws.Scope, p["name"])
		if err != nil {
			return err
		}
		if u := caller(r); c.Owner() != u.ID {
			return chub.Errorf(chub.KindForbidden, "AuthorizationFailed", c.ResourceID(),
				"only the user of compute %q may change its custom services, since they run inside it; %s is not its user (ask them to change the services)", c.Name, u.Name)
		}
		if c.Desired == chub.DesiredDeleted {
			return chub.Conflict("InvalidComputeState", "name", "compute %q is being deleted", c.Name)
		}
		settings := c.Settings
		settings.CustomServices = append([]chub.CustomService(nil), list...)
		if err := settings.Normalize(); err != nil {
			return err
		}
		if err := checkCustomServices(c, settings.CustomServices); err != nil {
			return err
		}
		old := c.Settings.CustomServices
		c.Settings.CustomServices = settings.CustomServices
		err = s.cfg.Store.UpdateCompute(r.Context(), c)
		if err == nil {
			s.stopRemovedServices(r.Context(), c, old)
			w.WriteHeader(http.StatusOK)
			return nil
		}
		if chub.ErrorKind(err) != chub.KindConflict || attempt >= 5 {
			return err
		}
	}
}

// stopRemovedServices stops, in a running instance, the custom services
// that are no longer in its list (changed ones are restarted with their new
// definition at their next request). It is best effort: an instance that
// does not answer runs none after its next start anyway.
func (s *Server) stopRemovedServices(ctx context.Context, c *chub.Compute, old []chub.CustomService) {
	if c.State != chub.StateRunning && c.State != chub.StateJobRunning {
		return
	}
	keep := map[string]bool{}
	for _, cs := range c.Settings.CustomServices {
		keep[cs.Name] = true
	}
	for _, cs := range old {
		if keep[cs.Name] || !apps.NameRE.MatchString(cs.Name) {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.agents.Do(sctx, c.ID, http.MethodPost, "/v1/apps/"+cs.Name+"/stop", nil, nil); err != nil {
			s.log.Warn("stop a removed custom service", "compute", c.Name, "service", cs.Name, "err", err)
		}
		cancel()
	}
}
