package api

import (
	"context"
	"net/http"

	"github.com/coder/websocket"

	"github.com/computehub/chub"
)

// exec relays a websocket between the caller and the agent inside the
// instance (see package streamproto for the messages). Only the instance's
// own user may exec.
func (s *Server) exec(w http.ResponseWriter, r *http.Request, p params) error {
	c, err := s.openable(r, p, "run commands in it")
	if err != nil {
		return err
	}
	agentConn, err := s.agents.Websocket(r.Context(), c.ID, "/v1/exec")
	if err != nil {
		return chub.Errorf(chub.KindUnavailable, "AgentUnavailable", "name", "the agent of compute %q did not answer: %v", c.Name, err)
	}
	defer agentConn.CloseNow()
	client, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil // Accept has answered the client
	}
	defer client.CloseNow()
	client.SetReadLimit(-1)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		relay(ctx, agentConn, client)
		cancel()
	}()
	relay(ctx, client, agentConn)
	agentConn.Close(websocket.StatusNormalClosure, "")
	client.Close(websocket.StatusNormalClosure, "")
	return nil
}

// openable loads the instance a caller wants to open (exec, terminal):
// they need the applicationaccess action and to be its user, and it must
// run. what says what was refused ("open its terminal").
func (s *Server) openable(r *http.Request, p params, what string) (*chub.Compute, error) {
	ws, err := s.workspace(r, p)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(r, chub.ActionComputeAppAccess, ws.Scope.ResourceID()+"/computes/"+p["name"]); err != nil {
		return nil, err
	}
	c, err := s.cfg.Store.GetCompute(r.Context(), ws.Scope, p["name"])
	if err != nil {
		return nil, err
	}
	if u := caller(r); c.Owner() != u.ID {
		return nil, chub.Errorf(chub.KindForbidden, "AuthorizationFailed", c.ResourceID(),
			"only the user of compute %q may %s; %s is not", c.Name, what, u.Name)
	}
	if c.State != chub.StateRunning && c.State != chub.StateJobRunning {
		return nil, chub.Conflict("InvalidComputeState", "name", "compute %q is %s; start it first (chub computetarget start computeinstance -n %s)", c.Name, c.State, c.Name)
	}
	return c, nil
}

// relay copies messages from src to dst until either side ends.
func relay(ctx context.Context, src, dst *websocket.Conn) {
	for {
		typ, data, err := src.Read(ctx)
		if err != nil {
			return
		}
		if err := dst.Write(ctx, typ, data); err != nil {
			return
		}
	}
}
