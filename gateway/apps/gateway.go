// Package apps provides the application gateway: it serves each instance's
// applications from an origin of their own, https://NAME.<apps domain>/APP/...
// (websockets included), proxied to the application inside the instance
// through the agent's tunnel, for the instance's own user only, and starts
// the application on demand. Studio's origin never reaches an application:
// its old path /instances/NAME/apps/APP/ hands a signed-in browser over to the
// application origin with a single-use code (see ServeHandoff).
package apps

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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

// Prefix is the URL path prefix of the old application URLs on Studio's
// origin, which ServeHandoff answers with a redirect to the application origin.
const Prefix = "/instances/"

// SigninPath is where an application origin takes a hand-off code.
const SigninPath = "/_chub/signin"

// DefaultDomain is the default apps domain: names under localhost resolve
// to the loopback in browsers (RFC 6761), so it needs no DNS on one machine.
const DefaultDomain = "apps.localhost"

// ensureEvery is how often a request re-asks the agent to keep its
// application running; each ask also counts as activity in the instance.
const ensureEvery = 30 * time.Second

// Config wires the gateway.
type Config struct {
	// Domain is the apps domain: instance NAME's applications are served at
	// https://NAME.<Domain>[:Port]/APP/ (default DefaultDomain).
	Domain string
	// Port is the port of the application URLs; empty or "443" leaves it out.
	Port  string
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
	// codes are the outstanding hand-off codes, by their SHA-256.
	codes map[string]handoff
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
	cfg.Domain = strings.Trim(strings.ToLower(cfg.Domain), ".")
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.Port == "443" {
		cfg.Port = ""
	}
	s, err := newSealer(cfg.SessionKey)
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, seal: s, ids: map[string]string{}, ensured: map[string]*ensureState{}, codes: map[string]handoff{}}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		ModifyResponse: appCookies,
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
	// byHeader says the caller was authenticated by its Authorization
	// header (a program), not by a cookie (a browser).
	byHeader bool
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
	out.Header.Del("Cookie")
	var keep []string
	// A program's request (its Authorization header no other site can make
	// a browser send) gets the XSRF pair of a Tornado application: the
	// application's own check stays on for browsers, whose cookies any site
	// can make them send.
	xsrf := t.byHeader && t.spec.TornadoXSRF && !safeMethod(pr.In.Method)
	if xsrf {
		v := randomHex()
		keep = append(keep, "_xsrf="+v)
		out.Header.Set("X-XSRFToken", v)
		out.Header.Del("X-CSRFToken")
	}
	for _, c := range pr.In.Cookies() {
		if reservedCookie(c.Name) || (xsrf && c.Name == "_xsrf") {
			continue
		}
		keep = append(keep, c.String())
	}
	if len(keep) > 0 {
		out.Header.Set("Cookie", strings.Join(keep, "; "))
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// reservedCookie says a cookie name is ComputeHub's: the application never
// receives or sets one.
func reservedCookie(name string) bool {
	return name == CookieName || name == StudioCookie || name == studioCSRFCookie
}

// appCookies makes every cookie an application sets host-only on its
// instance's application origin (the Domain attribute is removed: no cookie
// of an application reaches Studio or another instance), and drops those
// with ComputeHub's names.
func appCookies(resp *http.Response) error {
	sc := resp.Header.Values("Set-Cookie")
	if len(sc) == 0 {
		return nil
	}
	resp.Header.Del("Set-Cookie")
	for _, line := range sc {
		parts := strings.Split(line, ";")
		name, _, _ := strings.Cut(parts[0], "=")
		if reservedCookie(strings.TrimSpace(name)) {
			continue
		}
		kept := parts[:1]
		for _, a := range parts[1:] {
			k, _, _ := strings.Cut(a, "=")
			if !strings.EqualFold(strings.TrimSpace(k), "domain") {
				kept = append(kept, a)
			}
		}
		resp.Header.Add("Set-Cookie", strings.Join(kept, ";"))
	}
	return nil
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

// Host is the host (and port) of instance name's application origin.
func (g *Gateway) Host(name string) string {
	h := strings.ToLower(name) + "." + g.cfg.Domain
	if g.cfg.Port != "" {
		h = net.JoinHostPort(h, g.cfg.Port)
	}
	return h
}

// Origin is instance name's application origin, https://NAME.<domain>[:port].
func (g *Gateway) Origin(name string) string { return "https://" + g.Host(name) }

// URL is the address of application app of instance name (the API's endpointUri).
func (g *Gateway) URL(name, app string) string { return g.Origin(name) + catalog.BasePath(app) }

// Owns reports whether a request's Host is the apps domain or a name under
// it (an application origin): the server gives such requests to ServeHTTP,
// and nothing else.
func (g *Gateway) Owns(host string) bool {
	h := hostOnly(host)
	return h == g.cfg.Domain || strings.HasSuffix(h, "."+g.cfg.Domain)
}

func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// instanceOf is the instance name of an application origin's host.
func (g *Gateway) instanceOf(host string) (string, bool) {
	label, ok := strings.CutSuffix(hostOnly(host), "."+g.cfg.Domain)
	if !ok || label == "" || strings.Contains(label, ".") {
		return "", false
	}
	return label, true
}

// ServeHTTP serves the application origins: https://NAME.<domain>/APP/...,
// and the hand-off's sign-in at SigninPath. Nothing of the API or Studio is
// served here.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := g.instanceOf(r.Host)
	if !ok {
		writeError(w, chub.NotFound("", "%s is no application origin: they are NAME.%s", hostOnly(r.Host), g.cfg.Domain), 0)
		return
	}
	if r.URL.Path == SigninPath {
		g.signin(w, r, name)
		return
	}
	app, ok := parsePath(r.URL.Path)
	if !ok {
		writeError(w, chub.NotFound("", "no application at %s of %s: the applications of compute %q are at /APP/ (their endpointUri in the API)", r.URL.Path, g.Origin(name), name), 0)
		return
	}
	base := catalog.BasePath(app)
	ctx := r.Context()
	u, sess, fromQuery, err := g.authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="chub"`)
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			signInPage(w, r, name, err)
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
	if err := g.allowed(r, u, c, app); err != nil {
		writeError(w, err, 0)
		return
	}
	if sess != nil {
		if sess.ComputeID != c.ID {
			writeError(w, chub.Errorf(chub.KindUnauthenticated, "AuthenticationFailed", "", "the session cookie is for another instance; sign in again"), 0)
			return
		}
		// A browser session: refuse requests another site makes in its name.
		if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, "https://"+r.Host) {
			writeError(w, chub.Errorf(chub.KindForbidden, "AuthorizationFailed", "", "cross-origin request from %s refused", o), 0)
			return
		}
	}
	if fromQuery != "" {
		g.audit(r, u, c, app, "Succeeded", http.StatusSeeOther)
		g.startSession(w, r, c, u, g.cfg.HashToken(fromQuery), r.URL.Path, true)
		return
	}
	g.auditAccess(r, u, c, app)
	spec, err := specFor(c, app, g.Origin(c.Name))
	if err != nil {
		writeError(w, err, 0)
		return
	}
	if r.URL.Path+"/" == base {
		u := *r.URL
		u.Path = base
		u.RawPath = ""
		http.Redirect(w, r, u.RequestURI(), http.StatusPermanentRedirect)
		return
	}
	if c.State != chub.StateRunning && c.State != chub.StateJobRunning {
		writeError(w, chub.Conflict("InvalidComputeState", "name", "compute %q is %s: its applications are available only while it runs; start it first (chub computetarget start computeinstance -n %s)", c.Name, c.State, c.Name), 0)
		return
	}
	if err := g.ensure(ctx, c, spec); err != nil {
		writeError(w, err, 0)
		return
	}
	g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxKey{}, &target{compute: c, spec: spec, base: base, byHeader: sess == nil})))
}

// allowed says whether u may open the applications of c: the instance's own
// user only, and the Authorizer must allow it too. Refusals are audited.
func (g *Gateway) allowed(r *http.Request, u *chub.User, c *chub.Compute, app string) error {
	if g.cfg.Authorizer != nil {
		if err := g.cfg.Authorizer.Authorize(r.Context(), u, chub.ActionComputeAppAccess, c.ResourceID()); err != nil {
			g.audit(r, u, c, app, "Denied", http.StatusForbidden)
			return err
		}
	}
	if c.Owner() != u.ID {
		g.audit(r, u, c, app, "Denied", http.StatusForbidden)
		return chub.Errorf(chub.KindForbidden, "AuthorizationFailed", c.ResourceID(),
			"only the user of compute %q may open its applications; %s is not", c.Name, u.Name)
	}
	return nil
}

// parsePath splits /APP[/...] on an application origin.
func parsePath(p string) (app string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return "", false
	}
	app, _, _ = strings.Cut(rest, "/")
	return app, app != "" && catalog.NameRE.MatchString(app)
}

// parseOldPath splits /instances/NAME/apps/APP[/REST], the old application
// path on Studio's origin; rest keeps its leading slash.
func parseOldPath(p string) (name, app, rest string, ok bool) {
	tail, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		return "", "", "", false
	}
	parts := strings.SplitN(tail, "/", 4)
	if len(parts) < 3 || parts[0] == "" || parts[1] != "apps" || parts[2] == "" {
		return "", "", "", false
	}
	if len(parts) == 4 {
		rest = "/" + parts[3]
	}
	return parts[0], parts[2], rest, true
}

// authenticate finds the caller on an application origin: an API bearer
// token, a token in the query (a browser signing in; returned as
// fromQuery), or the origin's session cookie. Studio's session cookie is no
// credential here (a browser never sends it to this host; anyone else who
// does is refused).
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
	return nil, nil, "", chub.Errorf(chub.KindUnauthenticated, "AuthenticationFailed", "",
		"authentication failed: send 'Authorization: Bearer <token>', open the application from Studio, or open this URL once with ?token=<token> in a browser to get a session cookie")
}

// startSession sets the application origin's session cookie (host-only,
// Path=/) for the token whose hash is tokenHash and redirects to next,
// without the token in the query when dropToken.
func (g *Gateway) startSession(w http.ResponseWriter, r *http.Request, c *chub.Compute, u *chub.User, tokenHash, next string, dropToken bool) {
	now := g.cfg.Now()
	s := session{UserID: u.ID, ComputeID: c.ID, TokenHash: tokenHash, Expires: now.Add(g.cfg.SessionTTL).Unix()}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: g.seal.seal(s), Path: "/",
		MaxAge: int(g.cfg.SessionTTL / time.Second), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
	if dropToken {
		clean := *r.URL
		q := clean.Query()
		q.Del("token")
		clean.RawQuery = q.Encode()
		next = clean.RequestURI()
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handoffTTL is how long a hand-off code is valid; maxCodes bounds how many
// may be outstanding.
const (
	handoffTTL = time.Minute
	maxCodes   = 10000
)

// handoff is what a code stands for: this user's Studio session (the hash
// of its token), for this instance.
type handoff struct {
	userID, computeID, tokenHash string
	expires                      time.Time
}

// ServeHandoff answers the old application path on Studio's origin,
// /instances/NAME/apps/APP/...: never with the application. A GET from a
// browser signed in to Studio (its chub_session cookie) that may open the
// application gets a short-lived, single-use code bound to its user and the
// instance, and a 303 to https://NAME.<domain>/_chub/signin?code=...&next=/APP/...;
// any other GET a redirect to the application's URL; other methods 404.
func (g *Gateway) ServeHandoff(w http.ResponseWriter, r *http.Request) {
	name, app, rest, ok := parseOldPath(r.URL.Path)
	if !ok || !catalog.NameRE.MatchString(app) {
		writeError(w, chub.NotFound("", "no application matches the path %s; applications are at https://NAME.%s/APP/", r.URL.Path, g.cfg.Domain), 0)
		return
	}
	next := catalog.BasePath(app) + strings.TrimPrefix(rest, "/")
	if r.URL.RawQuery != "" {
		next += "?" + r.URL.RawQuery
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, chub.NotFound("", "applications are served from their own origin: use %s", g.Origin(name)+next), 0)
		return
	}
	if ck, err := r.Cookie(StudioCookie); err == nil && ck.Value != "" && r.URL.Query().Get("token") == "" {
		hash := g.cfg.HashToken(ck.Value)
		u, err := g.cfg.Store.Authenticate(r.Context(), hash)
		if err == nil {
			c, err := g.compute(r.Context(), name)
			if err == nil {
				err = g.allowed(r, u, c, app)
			}
			if err != nil {
				writeError(w, err, 0)
				return
			}
			code, err := g.mint(handoff{userID: u.ID, computeID: c.ID, tokenHash: hash})
			if err != nil {
				writeError(w, err, 0)
				return
			}
			w.Header().Set("Referrer-Policy", "no-referrer")
			http.Redirect(w, r, g.Origin(c.Name)+SigninPath+"?"+url.Values{"code": {code}, "next": {next}}.Encode(), http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, r, g.Origin(name)+next, http.StatusFound)
}

// mint makes a hand-off code for h.
func (g *Gateway) mint(h handoff) (string, error) {
	code := randomHex()
	now := g.cfg.Now()
	h.expires = now.Add(handoffTTL)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.codes) >= maxCodes {
		for k, v := range g.codes {
			if !now.Before(v.expires) {
				delete(g.codes, k)
			}
		}
		if len(g.codes) >= maxCodes {
			return "", chub.Errorf(chub.KindUnavailable, "TooManySignins", "", "too many application sign-ins are under way; try again in a minute")
		}
	}
	g.codes[codeKey(code)] = h
	return code, nil
}

// take redeems a code once.
func (g *Gateway) take(code string) (handoff, bool) {
	k := codeKey(code)
	g.mu.Lock()
	h, ok := g.codes[k]
	delete(g.codes, k)
	g.mu.Unlock()
	return h, ok && g.cfg.Now().Before(h.expires)
}

func codeKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

func randomHex() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// signin redeems a hand-off code on instance name's application origin:
// it sets the origin's session cookie and redirects to next (a local path).
func (g *Gateway) signin(w http.ResponseWriter, r *http.Request, name string) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, chub.Invalid("MethodNotAllowed", "", "%s takes GET only", SigninPath), http.StatusMethodNotAllowed)
		return
	}
	ended := chub.Errorf(chub.KindUnauthenticated, "AuthenticationFailed", "", "this sign-in link was used already or has expired; open the application from Studio again")
	h, ok := g.take(r.URL.Query().Get("code"))
	if !ok {
		signInPage(w, r, name, ended)
		return
	}
	c, err := g.compute(r.Context(), name)
	if err != nil || c.ID != h.computeID {
		signInPage(w, r, name, ended)
		return
	}
	u, err := g.cfg.Store.Authenticate(r.Context(), h.tokenHash)
	if err != nil || u.ID != h.userID {
		signInPage(w, r, name, ended)
		return
	}
	if err := g.allowed(r, u, c, "signin"); err != nil {
		writeError(w, err, 0)
		return
	}
	g.audit(r, u, c, "sign-in from Studio", "Succeeded", http.StatusSeeOther)
	g.startSession(w, r, c, u, h.tokenHash, localPath(r.URL.Query().Get("next")), false)
}

// localPath is next if it is a path of this origin, else "/".
func localPath(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	// Re-encoding can turn "/%2Fevil.example/ " into "//evil.example/%20".
	if p := u.RequestURI(); !strings.HasPrefix(p, "//") && !strings.Contains(p, "\\") {
		return p
	}
	return "/"
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
func specFor(c *chub.Compute, app, origin string) (catalog.Spec, error) {
	_, builtin := catalog.Lookup(app)
	for _, cs := range c.Settings.CustomServices {
		if cs.Name != app || builtin || app == catalog.Terminal {
			continue // a built-in application's name is never a custom service's
		}
		raw, _ := json.Marshal(cs)
		custom, err := catalog.CustomFromAzure(raw)
		if err == nil {
			var spec catalog.Spec
			if spec, err = catalog.CustomSpec(custom); err == nil {
				return spec, nil
			}
		}
		return catalog.Spec{}, chub.Invalid("InvalidCustomService", "customServices", "custom service %q of compute %q cannot run: %v", app, c.Name, err)
	}
	if a, ok := catalog.Lookup(app); ok {
		return a.Spec(origin), nil
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
<p>Open it from Studio (the instance's application links), or sign in here with a token.</p>
<form method="get" action="{{.Action}}"><label>ComputeHub API token (<code>chub token create</code>):
<input type="password" name="token" size="50" autofocus></label>
<button type="submit">Sign in</button></form>
</body></html>
`))

// signInPage answers 401 with a page whose form signs in with a token at
// action, the request's path (or the hand-off's next path).
func signInPage(w http.ResponseWriter, r *http.Request, name string, err error) {
	var e *chub.Error
	reason := err.Error()
	if errors.As(err, &e) {
		reason = e.Message
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	action := r.URL.Path
	if action == SigninPath {
		action = localPath(r.URL.Query().Get("next"))
	}
	signIn.Execute(w, struct{ Name, Reason, Action string }{name, reason, action})
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
