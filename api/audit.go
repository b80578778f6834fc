package api

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/computehub/chub"
)

// auditInfo collects, during one request, what the audit entry records:
// the action checked and the resource it was checked on.
type auditInfo struct {
	action, resource string
}

const auditKey ctxKey = 2

func auditOf(ctx context.Context) *auditInfo {
	a, _ := ctx.Value(auditKey).(*auditInfo)
	return a
}

// clientAddress is the caller's IP address.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// audit records a state-changing call, or any refusal, in the audit log.
// Reads that succeed are not recorded. Secrets never reach the entry: it
// holds the action, the resource and the outcome only.
func (s *Server) audit(r *http.Request, u *chub.User, info *auditInfo, status int, corr string) {
	denied := status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests
	if !denied && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return
	}
	e := &chub.AuditEntry{Time: time.Now().UTC(), Status: status, ClientAddress: clientAddress(r), CorrelationID: corr,
		Action: r.Method + " " + r.URL.Path, Resource: r.URL.Path}
	if info != nil && info.action != "" {
		e.Action, e.Resource = info.action, info.resource
	}
	if u != nil {
		e.PrincipalID, e.PrincipalName = u.ID, u.Name
	}
	switch {
	case denied:
		e.Result = "Denied"
	case status >= 400:
		e.Result = "Failed"
	default:
		e.Result = "Succeeded"
	}
	if err := s.cfg.Store.AppendAudit(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.Error("audit log write failed", "err", err)
	}
}

// Audit records an event that happened outside a request handler of this
// package (application access, SSH sessions, sign-ins).
func (s *Server) Audit(ctx context.Context, e *chub.AuditEntry) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if err := s.cfg.Store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("audit log write failed", "err", err)
	}
}

type auditJSON struct {
	Value []chub.AuditEntry `json:"value"`
}

// listAudit answers GET /chub/v1/auditLogs?since=RFC3339|DURATION&principal=&resource=&top=.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := s.authorize(r, chub.ActionAuditRead, chub.RootScope); err != nil {
		return err
	}
	q := r.URL.Query()
	f := chub.AuditFilter{Principal: q.Get("principal"), Resource: q.Get("resource")}
	if v := q.Get("since"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			f.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, v); err == nil {
			f.Since = t
		} else {
			return chub.Invalid("InvalidSince", "since", "since must be a time (RFC 3339, e.g. 2026-11-29T10:00:00Z) or a duration such as 1h, got %q", v)
		}
	}
	if v := q.Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return chub.Invalid("InvalidTop", "top", "top must be a positive number, got %q", v)
		}
		f.Limit = n
	}
	es, err := s.cfg.Store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	if es == nil {
		es = []chub.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, auditJSON{Value: es})
	return nil
}

// isAuthorizationPath reports whether the path is under a
// Microsoft.Authorization provider, and splits it into scope and rest.
func isAuthorizationPath(path string) (scope, rest string, ok bool) {
	const marker = "/providers/microsoft.authorization/"
	// Lower-case ASCII only, so that offsets in it are offsets in path
	// (strings.ToLower turns "\xcf" into 3 bytes and a Kelvin sign into 1).
	lower := []byte(path)
	for j, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[j] = c + 'a' - 'A'
		}
	}
	i := strings.Index(string(lower), marker)
	if i < 0 {
		return "", "", false
	}
	scope = path[:i]
	if scope == "" {
		scope = "/"
	}
	return scope, path[i+len(marker):], true
}
