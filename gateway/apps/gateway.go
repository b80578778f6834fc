// Package apps provides the application gateway: it proxies
// https://SERVER/instances/NAME/apps/APP/... (websockets included) to the
// application inside the instance through the agent's tunnel, for the
// instance's own user only, and starts the application on demand.
package apps

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/agentclient"
	catalog "github.com/computehub/chub/apps"
)

// Prefix is the URL path prefix the gateway serves.
const Prefix = "/instances/"

// ensureEvery is how often a request re-asks the agent to keep its
// application running; each ask also counts as activity in the instance.
const ensureEvery = 30 * time.Second

// Config wires the gateway.
type Config struct {
	Store chub.Store
	// Authorizer, when set, must also allow the applicationaccess action;
	// whatever it says, only the instance's own user gets through.
	Authorizer chub.Authorizer
	Agents     *agentclient.Client
	// HashToken is how the store keeps API tokens (api.HashToken).
	HashToken func(secret string) string
	// SessionKey seals session cookies (32 bytes; see LoadOrCreateKey).
	SessionKey []byte
	// SessionTTL is how long a browser session lasts; default 12h.
	SessionTTL time.Duration
	Logger     *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Audit, when set, records application access: refusals, browser
	// sign-ins, and programs' access at most once per accessAuditEvery.
	Audit func(ctx context.Context, e *chub.AuditEntry)
}

// accessAuditEvery spaces the audit entries of one user's repeated access
// to one application.
const accessAuditEvery = 10 * time.Minute

// Gateway is the application proxy, an http.Handler for Prefix.
type Gateway struct {
	cfg   Config
	log   *slog.Logger
	seal  *sealer
	proxy *httputil.ReverseProxy

	mu sync.Mutex // guards ids and ensured
	// ids maps a compute name to its id, a cache of the store's answer.
	ids map[string]string
	// ensured says when each application (key computeID/app) was last
	// ensured running, and with which spec.
	ensured map[string]*ensureState
	// audited says when access by user/compute/app was last recorded.
	audited map[string]time.Time
}

// audit records one application access event.
func (g *Gateway) audit(r *http.Request, u *chub.User, c *chub.Compute, app, result string, status int) {
	if g.cfg.Audit == nil {
		return
	}
	e := &chub.AuditEntry{Time: g.cfg.Now().UTC(), Action: chub.ActionComputeAppAccess, Result: result, Status: status, Detail: "application " + app}
	if u != nil {
		e.PrincipalID, e.PrincipalName = u.ID, u.Name
	}
	if c != nil {
		e.Resource = c.ResourceID()
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		e.ClientAddress = host
	}
	e.CorrelationID = r.Header.Get("x-ms-correlation-request-id")
	g.cfg.Audit(r.Context(), e)
}

// auditAccess records a granted access unless the same one was recorded lately.
func (g *Gateway) auditAccess(r *http.Request, u *chub.User, c *chub.Compute, app string) {
	key := u.ID + "/" + c.ID + "/" + app
	now := g.cfg.Now()
	g.mu.Lock()
	if g.audited == nil {
		g.audited = map[string]time.Time{}
	}
	last, seen := g.audited[key]
	if !seen || now.Sub(last) >= accessAuditEvery {
		g.audited[key] = now
	}
	g.mu.Unlock()
	if !seen || now.Sub(last) >= accessAuditEvery {
		g.audit(r, u, c, app, "Succeeded", http.StatusOK)
	}
}

type ensureState struct {
	mu    sync.Mutex // held while asking the agent; guards at, spec and epoch
	at    time.Time
	spec  catalog.Spec
	epoch string // the instance's last operation then: a restart starts afresh
}

// New builds the gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s, err := newSealer(cfg.SessionKey)
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, seal: s, ids: map[string]string{}, ensured: map[string]*ensureState{}}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: g.rewrite,
		Transport: &http.Transport{
			// The "host" of a backend address is the instance's id: the
			// agent carries the connection to the port on its loopback.
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				id, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				p, err := strconv.Atoi(port)
				if err != nil {
					return nil, err
				}
				conn, err := cfg.Agents.DialTCP(ctx, id, p)
				if err != nil {
					return nil, err
				}
				// The request that dialed says which application this is.
				if t, ok := ctx.Value(ctxKey{}).(*target); ok {
					ac := &activeConn{Conn: conn, touch: func() { g.ensure(context.Background(), t.compute, t.spec) }}
					ac.last.Store(time.Now().UnixNano())
					return ac, nil
				}
				return conn, nil
			},
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 5 * time.Minute,
		},
		FlushInterval: -1, // interactive applications stream
		ErrorHandler:  g.proxyError,
	}
	return g, nil
}

// target is where a request goes, passed from ServeHTTP to rewrite.
type target struct {
	compute *chub.Compute
	spec    catalog.Spec
	base    string // the application's base path, with trailing slash
}

type ctxKey struct{}

func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(ctxKey{}).(*target)
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = net.JoinHostPort(t.compute.ID, strconv.Itoa(t.spec.Port))
	if t.spec.StripPrefix {
		strip := strings.TrimSuffix(t.base, "/")
		out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, strip)
		if pr.In.URL.RawPath != "" {
			out.URL.RawPath = strings.TrimPrefix(pr.In.URL.RawPath, strip)
		}
		out.Header.Set("X-Forwarded-Prefix", strip)
	}
	out.Host = pr.In.Host
	pr.SetXForwarded()
	// The application never sees the caller's credentials for the server.
	out.Header.Del("Authorization")
	if cs := pr.In.Cookies(); len(cs) > 0 {
		out.Header.Del("Cookie")
		var keep []string
		for _, c := range cs {
			if c.Name != CookieName && c.Name != StudioCookie && c.Name != studioCSRFCookie {
				keep = append(keep, c.String())
			}
		}
		if len(keep) > 0 {
			out.Header.Set("Cookie", strings.Join(keep, "; "))
		}
	}
}

func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	t := r.Context().Value(ctxKey{}).(*target)
	// Ask the agent again next time: the application may have died.
	g.mu.Lock()
	if st := g.ensured[t.compute.ID+"/"+t.spec.Name]; st != nil {
		st.mu.Lock()
		st.at = time.Time{}
		st.mu.Unlock()
	}
	g.mu.Unlock()
	if errors.Is(err, context.Canceled) {
		return
	}
	g.log.Warn("application proxy", "compute", t.compute.Name, "app", t.spec.Name, "err", err)
	writeError(w, chub.Errorf(chub.KindUnavailable, "ApplicationUnavailable", t.spec.Name,
		"application %s of compute %q did not answer: %v; try again in a moment", t.spec.Name, t.compute.Name, err), http.StatusBadGateway)
}

// ServeHTTP serves /instances/NAME/apps/APP/...
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, app, ok := parsePath(r.URL.Path)
	if !ok {
		writeError(w, chub.NotFound("", "no application matches the path %s; applications are at /instances/NAME/apps/APP/", r.URL.Path), 0)
		return
	}
	base := catalog.BasePath(name, app)
	if r.URL.Path+"/" == base {
		u := *r.URL
		u.Path = base
		u.RawPath = ""
		http.Redirect(w, r, u.RequestURI(), http.StatusPermanentRedirect)
		return
	}
	ctx := r.Context()
	u, sess, fromQuery, err := g.authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="chub"`)
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			signInPage(w, name, err)
			return
		}
		writeError(w, err, 0)
		return
	}
	c, err := g.compute(ctx, name)
	if err != nil {
		writeError(w, err, 0)
		return
	}
	if g.cfg.Authorizer != nil {
		if err := g.cfg.Authorizer.Authorize(ctx, u, chub.ActionComputeAppAccess, c.ResourceID()); err != nil {
			g.audit(r, u, c, app, "Denied", http.StatusForbidden)
			writeError(w, err, 0)
			return
		}
	}
	if c.Owner() != u.ID {
		g.audit(r, u, c, app, "Denied", http.StatusForbidden)
		writeError(w, chub.Errorf(chub.KindForbidden, "AuthorizationFailed", c.ResourceID(),
			"only the user of compute %q may open its applications; %s is not", c.Name, u.Name), 0)
		return
	}
	if sess != nil && sess.ComputeID != "" && sess.ComputeID != c.ID {
		writeError(w, chub.Errorf(chub.KindUnauthenticated, "AuthenticationFailed", "", "the session cookie is for another instance; sign in again"), 0)
		return
	}
	if sess != nil {
		// A browser session: refuse requests another site makes in its name.
		if o := r.Header.Get("Origin"); o != "" && o != "https://"+r.Host {
			writeError(w, chub.Errorf(chub.KindForbidden, "AuthorizationFailed", "", "cross-origin request from %s refused", o), 0)
			return
		}
	}
	if fromQuery != "" {
		g.audit(r, u, c, app, "Succeeded", http.StatusSeeOther)
		g.startSession(w, r, c, u, fromQuery)
		return
	}
	g.auditAccess(r, u, c, app)
	if c.State != chub.StateRunning && c.State != chub.StateJobRunning {
		writeError(w, chub.Conflict("InvalidComputeState", "name", "compute %q is %s: its applications are available only while it runs; start it first (chub computetarget start computeinstance -n %s)", c.Name, c.State, c.Name), 0)
		return
	}
	spec, err := specFor(c, app)
	if err != nil {
		writeError(w, err, 0)
		return
	}
	if err := g.ensure(ctx, c, spec); err != nil {
		writeError(w, err, 0)
		return
	}
	g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxKey{}, &target{compute: c, spec: spec, base: base})))
}

// parsePath splits /instances/NAME/apps/APP[/...].
func parsePath(p string) (name, app string, ok bool) {
	rest, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		return "", "", false
	}
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) < 3 || parts[0] == "" || parts[1] != "apps" || parts[2] == "" {
		return "", "", false
	}
	return parts[0], parts[2], true
}

// authenticate finds the caller: an API bearer token, a token in the query
// (a browser signing in; returned as fromQuery), or a session cookie.
func (g *Gateway) authenticate(r *http.Request) (u *chub.User, sess *session, fromQuery string, err error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return nil, nil, "", chub.Errorf(chub.KindUnauthenticated, "InvalidAuthenticationToken", "", "authentication failed: the Authorization header must be 'Bearer <token>'")
		}
		u, err := g.cfg.Store.Authenticate(ctx, g.cfg.HashToken(strings.TrimSpace(tok)))
		return u, nil, "", err
	}
	if tok := r.URL.Query().Get("token"); tok != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		u, err := g.cfg.Store.Authenticate(ctx, g.cfg.HashToken(tok))
		return u, nil, tok, err
	}
	if ck, err := r.Cookie(CookieName); err == nil {
		s, err := g.seal.open(ck.Value, g.cfg.Now())
		if err != nil {
			return nil, nil, "", chub.Errorf(chub.KindUnauthenticated, "AuthenticationFailed", "", "%v", err)
		}
		u, err := g.cfg.Store.Authenticate(ctx, s.TokenHash)
		if err != nil || u.ID != s.UserID {
			return nil, nil, "", chub.Errorf(chub.KindUnauthenticated, "AuthenticationFailed", "", "the token this session was made from is no longer valid; sign in again")
		}
		return u, &s, "", nil
	}
	if ck, err := r.Cookie(StudioCookie); err == nil && ck.Value != "" {
		// Signed in to Studio (same site, SameSite=Strict): the Studio session
		// is a token like any other; it is a browser session, so its
		// requests get the same Origin check as the gateway's own cookie.
		u, err := g.cfg.Store.Authenticate(ctx, g.cfg.HashToken(ck.Value))
		if err != nil {
			return nil, nil, "", chub.Errorf(chub.KindUnauthenticated, "AuthenticationFailed", "", "your Studio session has ended; sign in again")
		}
		return u, &session{UserID: u.ID}, "", nil
	}
	return nil, nil, "", chub.Errorf(chub.KindUnauthenticated, "AuthenticationFailed", "",
		"authentication failed: send 'Authorization: Bearer <token>', or open this URL once with ?token=<token> in a browser to get a session cookie")
}

// startSession sets the session cookie and redirects to the URL without the token.
func (g *Gateway) startSession(w http.ResponseWriter, r *http.Request, c *chub.Compute, u *chub.User, tok string) {
	now := g.cfg.Now()
	s := session{UserID: u.ID, ComputeID: c.ID, TokenHash: g.cfg.HashToken(tok), Expires: now.Add(g.cfg.SessionTTL).Unix()}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: g.seal.seal(s), Path: "/instances/" + c.Name + "/",
		MaxAge: int(g.cfg.SessionTTL / time.Second), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
	clean := *r.URL
	q := clean.Query()
	q.Del("token")
	clean.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, clean.RequestURI(), http.StatusSeeOther)
}

// compute finds a compute by name (names are unique in the region).
func (g *Gateway) compute(ctx context.Context, name string) (*chub.Compute, error) {
	g.mu.Lock()
	id := g.ids[strings.ToLower(name)]
	g.mu.Unlock()
	if id != "" {
		c, err := g.cfg.Store.GetComputeByID(ctx, id)
		if err == nil && strings.EqualFold(c.Name, name) && c.Desired != chub.DesiredDeleted {
			return c, nil
		}
		if err != nil && !chub.IsNotFound(err) {
			return nil, err
		}
	}
	all, err := g.cfg.Store.ListAllComputes(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if strings.EqualFold(c.Name, name) && c.Desired != chub.DesiredDeleted {
			g.mu.Lock()
			g.ids[strings.ToLower(name)] = c.ID
			g.mu.Unlock()
			return c, nil
		}
	}
	return nil, chub.NotFound("name", "there is no compute instance named %q", name)
}

// specFor resolves an application of c: a custom service of that name, or
// a catalog application.
func specFor(c *chub.Compute, app string) (catalog.Spec, error) {
	_, builtin := catalog.Lookup(app)
	for _, cs := range c.Settings.CustomServices {
		if cs.Name != app || builtin || app == catalog.Terminal {
			continue // a built-in application's name is never a custom service's
		}
		raw, _ := json.Marshal(cs)
		custom, err := catalog.CustomFromAzure(raw)
		if err == nil {
			var spec catalog.Spec
			if spec, err = catalog.CustomSpec(c.Name, custom); err == nil {
				return spec, nil
			}
		}
		return catalog.Spec{}, chub.Invalid("InvalidCustomService", "customServices", "custom service %q of compute %q cannot run: %v", app, c.Name, err)
	}
	if a, ok := catalog.Lookup(app); ok {
		return a.Spec(c.Name), nil
	}

	if app == catalog.Terminal {
		return catalog.Spec{}, chub.NotFound("app", "the browser terminal of compute %q is the websocket at its ARM path /terminal", c.Name)
	}
	return catalog.Spec{}, chub.NotFound("app", "compute %q has no application %q", c.Name, app)
}

// ensure asks the agent to keep the application running (and waits until
// it is ready) unless it did so recently with the same spec. Each ask counts
// as activity in the instance.
func (g *Gateway) ensure(ctx context.Context, c *chub.Compute, spec catalog.Spec) error {
	key := c.ID + "/" + spec.Name
	g.mu.Lock()
	st := g.ensured[key]
	if st == nil {
		st = &ensureState{}
		g.ensured[key] = st
	}
	g.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	now := g.cfg.Now()
	epoch := ""
	if op := c.LastOperation; op != nil {
		epoch = string(op.OperationName) + op.OperationTime.String()
	}
	if !st.at.IsZero() && now.Sub(st.at) < ensureEvery && reflect.DeepEqual(st.spec, spec) && st.epoch == epoch {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := g.cfg.Agents.Do(actx, c.ID, http.MethodPost, "/v1/apps/"+url.PathEscape(spec.Name)+"/start", spec, nil)
	if err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, " 404 Not Found"):
			return chub.NotFound("app", "application %s is not available in compute %q: %s", spec.Name, c.Name, agentMessage(msg))
		case strings.Contains(msg, " 502 Bad Gateway"), strings.Contains(msg, " 504 Gateway Timeout"):
			return chub.Errorf(chub.KindUnavailable, "ApplicationFailed", "app", "%s", agentMessage(msg))
		}
		return chub.Errorf(chub.KindUnavailable, "AgentUnavailable", "name", "the agent of compute %q did not start application %s: %v", c.Name, spec.Name, err)
	}
	st.at, st.spec, st.epoch = g.cfg.Now(), spec, epoch
	return nil
}

// agentMessage is the agent's own words in an agentclient error.
func agentMessage(msg string) string {
	if i := strings.LastIndex(msg, ": application "); i >= 0 {
		return strings.TrimSpace(msg[i+2:])
	}
	return msg
}

var statusOf = map[chub.Kind]int{
	chub.KindInternal:        http.StatusInternalServerError,
	chub.KindInvalid:         http.StatusBadRequest,
	chub.KindUnauthenticated: http.StatusUnauthorized,
	chub.KindForbidden:       http.StatusForbidden,
	chub.KindNotFound:        http.StatusNotFound,
	chub.KindConflict:        http.StatusConflict,
	chub.KindUnavailable:     http.StatusServiceUnavailable,
}

// writeError answers in Azure's error envelope; status 0 means the one
// that fits the error's kind.
func writeError(w http.ResponseWriter, err error, status int) {
	var e *chub.Error
	if !errors.As(err, &e) {
		e = &chub.Error{Kind: chub.KindInternal, Code: "InternalServerError", Message: "an internal error occurred: " + err.Error()}
	}
	if status == 0 {
		status = statusOf[e.Kind]
	}
	w.Header().Set("x-ms-error-code", e.Code)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	body := map[string]any{"error": map[string]any{"code": e.Code, "message": e.Message, "target": e.Target,
		"details": []any{}, "additionalInfo": []any{}}}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(body)
}

var signIn = template.Must(template.New("signin").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in: {{.Name}}</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>Open the applications of {{.Name}}</h1>
<p>{{.Reason}}</p>
<form method="get"><label>ComputeHub API token (<code>chub token create</code>):
<input type="password" name="token" size="50" autofocus></label>
<button type="submit">Sign in</button></form>
</body></html>
`))

func signInPage(w http.ResponseWriter, name string, err error) {
	var e *chub.Error
	reason := err.Error()
	if errors.As(err, &e) {
		reason = e.Message
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	signIn.Execute(w, struct{ Name, Reason string }{name, reason})
}

// activeConn is a connection to an application that, while traffic flows
// (a long websocket such as a Jupyter kernel's, a kept-alive connection),
// re-asks the agent to keep the application running every ensureEvery: each
// ask counts as activity in the instance.
type activeConn struct {
	net.Conn
	touch func()
	last  atomic.Int64 // unix nanoseconds of the last ask
}

func (c *activeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.active()
	}
	return n, err
}

func (c *activeConn) Write(b []byte) (int, error) {
	c.active()
	return c.Conn.Write(b)
}

func (c *activeConn) active() {
	now := time.Now().UnixNano()
	last := c.last.Load()
	if now-last < int64(ensureEvery) || !c.last.CompareAndSwap(last, now) {
		return
	}
	go c.touch()
}
