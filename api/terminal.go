package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/coder/websocket"

	"github.com/computehub/chub"
	"github.com/computehub/chub/streamproto"
)

// terminal relays a terminal session between the caller and the agent
// inside the instance: GET {compute}/terminal?session=ID&offset=N&cols=C&rows=R
// (websocket; see package streamproto, "Terminals"). Without session it
// starts a new login shell; with one it re-attaches to that shell. Only
// the instance's own user may open its terminal.
func (s *Server) terminal(w http.ResponseWriter, r *http.Request, p params) error {
	c, err := s.openable(r, p, "open its terminal")
	if err != nil {
		return err
	}
	q := url.Values{}
	in := r.URL.Query()
	if id := in.Get("session"); id != "" {
		if !streamproto.ValidSessionID(id) {
			return chub.Errorf(chub.KindInvalid, "InvalidTerminalSession", "session", "session %q is not a terminal session id", id)
		}
		var sessions []struct {
			ID string `json:"id"`
		}
		if err := s.agents.Get(r.Context(), c.ID, "/v1/terminals", &sessions); err != nil {
			return chub.Errorf(chub.KindUnavailable, "AgentUnavailable", "name", "the agent of compute %q did not answer: %v", c.Name, err)
		}
		found := false
		for _, ts := range sessions {
			found = found || ts.ID == id
		}
		if !found {
			return chub.Errorf(chub.KindNotFound, "TerminalSessionNotFound", "session",
				"compute %q has no terminal session %s: it ended, or nobody re-attached within the keep time; open a new one without session", c.Name, id)
		}
		q.Set("session", id)
		if off := in.Get("offset"); off != "" {
			if n, err := strconv.ParseInt(off, 10, 64); err != nil || n < 0 {
				return chub.Errorf(chub.KindInvalid, "InvalidTerminalOffset", "offset", "offset %q is not a byte count", off)
			}
			q.Set("offset", off)
		}
	}
	if cols, rows := in.Get("cols"), in.Get("rows"); cols != "" || rows != "" {
		if _, err := parseCells(cols, rows); err != nil {
			return err
		}
		q.Set("cols", cols)
		q.Set("rows", rows)
	}
	agentConn, err := s.agents.Websocket(r.Context(), c.ID, "/v1/terminals/attach?"+q.Encode())
	if err != nil {
		return chub.Errorf(chub.KindUnavailable, "AgentUnavailable", "name", "the agent of compute %q did not open a terminal: %v", c.Name, err)
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
	// Closing the agent's side detaches: the shell keeps running.
	agentConn.Close(websocket.StatusNormalClosure, "")
	client.Close(websocket.StatusNormalClosure, "")
	return nil
}

// parseCells checks a terminal size given as query values.
func parseCells(cols, rows string) (streamproto.Size, error) {
	c, err1 := strconv.ParseUint(cols, 10, 16)
	r, err2 := strconv.ParseUint(rows, 10, 16)
	if err1 != nil || err2 != nil || c == 0 || r == 0 {
		return streamproto.Size{}, chub.Errorf(chub.KindInvalid, "InvalidTerminalSize", "cols",
			"cols and rows must both be 1-65535, got %q and %q", cols, rows)
	}
	return streamproto.Size{Cols: uint16(c), Rows: uint16(r)}, nil
}
