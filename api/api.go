// Package api serves ComputeHub's HTTP API: Azure's Machine Learning compute
// REST API (same paths, verbs, status codes, headers and JSON shapes), the
// operation-status endpoints clients poll, and ComputeHub's own user and
// token endpoints under /chub/v1.
package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/agentclient"
	"github.com/computehub/chub/artifacts"
	"github.com/computehub/chub/jobs"
	"github.com/computehub/chub/lifecycle"
)

// Config wires the API to the rest of the server.
type Config struct {
	Store      chub.Store
	Lifecycle  *lifecycle.Service
	Authorizer chub.Authorizer
	Runtime    chub.Runtime
	Catalog    func() *chub.Catalog
	Region     string
	// PageSize is how many computes a list page holds (default 100).
	PageSize int
	// RetryAfter is the polling interval suggested to clients (default 1s).
	RetryAfter time.Duration
	// PublicHost is the server host's address users reach (SSH), reported
	// in connectivityEndpoints.publicIpAddress.
	PublicHost string
	// ExternalURL is the server's address as its users reach it
	// (https://host:port, no trailing slash): the base of every URL the API
	// hands out (Location, Azure-AsyncOperation, nextLink, operation ids).
	// The request's Host header is never used for them.
	ExternalURL string
	// AppURL is the address of application app of instance instance on its
	// own origin (the application gateway's URL), the applications'
	// endpointUri; nil means https://INSTANCE.apps.localhost/APP/.
	AppURL func(instance, app string) string
	// Jobs runs the job queues; Artifacts keeps uploads, logs and outputs.
	Jobs      *jobs.Controller
	Artifacts *artifacts.Store
	// MaxUpload bounds one blob upload (default: the artifact store's MaxBlob).
	MaxUpload int64
	// Signin throttles failed password sign-ins (default: NewSigninThrottle()).
	Signin *SigninThrottle
	Logger *slog.Logger
}

// Server is the HTTP handler of the API.
type Server struct {
	cfg    Config
	log    *slog.Logger
	routes []route
	ready  atomic.Bool
	agents *agentclient.Client
}

// New builds the API handler.
func New(cfg Config) *Server {
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.ExternalURL = strings.TrimRight(cfg.ExternalURL, "/")
	if cfg.Signin == nil {
		cfg.Signin = NewSigninThrottle()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, agents: &agentclient.Client{Runtime: cfg.Runtime}}
	s.addRoutes()
	return s
}

// SetReady makes /healthz answer 200.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// hashToken is how tokens are stored: the hex SHA-256 of the secret. Tokens
// are 256-bit random strings, so a fast hash is safe.
func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// HashToken exposes the token hash for the bootstrap.
func HashToken(secret string) string { return hashToken(secret) }

type ctxKey int

const (
	userKey        ctxKey = 1
	externalURLKey ctxKey = 3
)

func caller(r *http.Request) *chub.User { return r.Context().Value(userKey).(*chub.User) }

// ServeHTTP authenticates, checks api-version and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := lifecycle.NewID()
	w.Header().Set("x-ms-request-id", reqID)
	if cid := r.Header.Get("x-ms-client-request-id"); cid != "" {
		w.Header().Set("x-ms-client-request-id", cid)
	}
	corr := r.Header.Get("x-ms-correlation-request-id")
	if corr == "" {
		corr = reqID
	}
	w.Header().Set("x-ms-correlation-request-id", corr)
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: 200}
	defer func() {
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "dur", time.Since(start), "request_id", reqID)
	}()
	if r.URL.Path == "/healthz" {
		if !s.ready.Load() {
			writeError(sw, r, chub.Errorf(chub.KindUnavailable, "ServiceUnavailable", "", "the server is starting"))
			return
		}
		sw.Header().Set("Content-Type", "text/plain")
		io.WriteString(sw, "ok\n")
		return
	}
	info := &auditInfo{}
	r = r.WithContext(context.WithValue(context.WithValue(r.Context(), auditKey, info), externalURLKey, s.cfg.ExternalURL))
	if r.Method == http.MethodPost && strings.EqualFold(strings.TrimRight(r.URL.Path, "/"), "/chub/v1/session") {
		u, err := s.createSession(sw, r)
		if err != nil {
			writeError(sw, r, err)
		}
		s.audit(r, u, info, sw.status, corr)
		return
	}
	if r.Method == http.MethodPost && strings.EqualFold(strings.TrimRight(r.URL.Path, "/"), "/chub/v1/signin") {
		u, err := s.signin(sw, r)
		if err != nil {
			writeError(sw, r, err)
		}
		s.audit(r, u, info, sw.status, corr)
		return
	}
	if isBlobPath(r) {
		// The upload URL's sig is its credential: no bearer token.
		u, err := s.putBlob(sw, r)
		if err != nil {
			s.fail(sw, r, err, reqID)
		}
		s.audit(r, u, info, sw.status, corr)
		return
	}
	u, err := s.authenticate(r)
	if err != nil {
		sw.Header().Set("WWW-Authenticate", `Bearer realm="chub"`)
		writeError(sw, r, err)
		s.audit(r, nil, info, sw.status, corr)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), userKey, u))
	defer func() { s.audit(r, u, info, sw.status, corr) }()
	if scope, rest, ok := isAuthorizationPath(r.URL.Path); ok {
		if err := s.serveAuthorization(sw, r, scope, rest); err != nil {
			s.fail(sw, r, err, reqID)
		}
		return
	}
	rt, params, err := s.match(r)
	if err != nil {
		writeError(sw, r, err)
		return
	}
	if rt.arm {
		if err := checkAPIVersion(r); err != nil {
			writeError(sw, r, err)
			return
		}
	}
	if err := rt.handle(sw, r, params); err != nil {
		s.fail(sw, r, err, reqID)
	}
}

// fail answers an error, logging it when it is internal.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, reqID string) {
	if chub.ErrorKind(err) == chub.KindInternal {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err, "request_id", reqID)
	}
	writeError(w, r, err)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController and websocket upgrades reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) authenticate(r *http.Request) (*chub.User, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" {
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			return s.authenticateSession(r, c.Value)
		}
		return nil, chub.Errorf(chub.KindUnauthenticated, "AuthenticationFailed", "", "authentication failed: the Authorization header is missing; send 'Authorization: Bearer <token>' (chub token create makes one)")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, chub.Errorf(chub.KindUnauthenticated, "InvalidAuthenticationToken", "", "authentication failed: the Authorization header must be 'Bearer <token>'")
	}
	return s.cfg.Store.Authenticate(r.Context(), hashToken(strings.TrimSpace(tok)))
}

// Oldest and newest api-version the official clients send.
const (
	MinAPIVersion = "2018-03-01-preview"
	MaxAPIVersion = "2025-06-01"
)

// APIVersions are the published api-versions of
// Microsoft.MachineLearningServices from MinAPIVersion to MaxAPIVersion,
// the only ones accepted (case-insensitively), as Azure does.
var APIVersions = []string{
	"2018-03-01-preview", "2018-11-19", "2019-05-01", "2019-06-01", "2019-11-01",
	"2020-01-01", "2020-02-18-preview", "2020-03-01", "2020-04-01", "2020-04-01-preview",
	"2020-05-01-preview", "2020-05-15-preview", "2020-06-01", "2020-08-01", "2020-09-01-preview",
	"2021-01-01", "2021-03-01-preview", "2021-04-01", "2021-07-01",
	"2022-01-01-preview", "2022-02-01-preview", "2022-05-01", "2022-06-01-preview",
	"2022-10-01", "2022-10-01-preview", "2022-12-01-preview",
	"2023-02-01-preview", "2023-04-01", "2023-04-01-preview", "2023-06-01-preview",
	"2023-08-01-preview", "2023-10-01",
	"2024-01-01-preview", "2024-04-01", "2024-04-01-preview", "2024-07-01-preview",
	"2024-10-01", "2024-10-01-preview",
	"2025-01-01-preview", "2025-04-01", "2025-04-01-preview", "2025-06-01",
}

var knownAPIVersion = func() map[string]bool {
	m := map[string]bool{}
	for _, v := range APIVersions {
		m[v] = true
	}
	return m
}()

func checkAPIVersion(r *http.Request) error {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		return chub.Invalid("MissingApiVersionParameter", "api-version", "the api-version query parameter (?api-version=) is required for all requests; use for example ?api-version=%s", MaxAPIVersion)
	}
	if !knownAPIVersion[strings.ToLower(v)] {
		why := "is not a supported version"
		if d, _, _ := strings.Cut(v, "-preview"); len(d) != 10 {
			why = "is not a date such as " + MaxAPIVersion
		} else if _, err := time.Parse("2006-01-02", d); err != nil {
			why = "is not a real date"
		}
		return chub.Invalid("InvalidApiVersionParameter", "api-version", "the api-version '%s' %s; the supported versions are '%s'", v, why, strings.Join(APIVersions, ", "))
	}
	return nil
}

var statusOf = map[chub.Kind]int{
	chub.KindInternal:        http.StatusInternalServerError,
	chub.KindInvalid:         http.StatusBadRequest,
	chub.KindUnauthenticated: http.StatusUnauthorized,
	chub.KindForbidden:       http.StatusForbidden,
	chub.KindNotFound:        http.StatusNotFound,
	chub.KindConflict:        http.StatusConflict,
	chub.KindUnavailable:     http.StatusServiceUnavailable,
	chub.KindTooLarge:        http.StatusRequestEntityTooLarge,
	chub.KindTooManyRequests: http.StatusTooManyRequests,
}

// envelope is Azure's error response.
type envelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code           string           `json:"code"`
	Message        string           `json:"message"`
	Target         string           `json:"target,omitempty"`
	Details        []errorBody      `json:"details"`
	AdditionalInfo []map[string]any `json:"additionalInfo"`
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *chub.Error
	if !errors.As(err, &e) {
		e = &chub.Error{Kind: chub.KindInternal, Code: "InternalServerError", Message: "an internal error occurred; the server log has the details (request id " + w.Header().Get("x-ms-request-id") + ")"}
	}
	w.Header().Set("x-ms-error-code", e.Code)
	writeJSON(w, statusOf[e.Kind], envelope{Error: errorBody{Code: e.Code, Message: e.Message, Target: e.Target, Details: []errorBody{}, AdditionalInfo: []map[string]any{}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

const maxBody = 1 << 20

// tooLarge is the 413 of a body over maxBody.
func tooLarge() error {
	return chub.Errorf(chub.KindTooLarge, "RequestEntityTooLarge", "", "the request body is larger than the limit of %d bytes; send a smaller document", maxBody)
}

// decode reads a JSON body into v, turning every failure into a 400 that
// names the offending field (413 for a body over the limit).
func decode(r *http.Request, v any) error {
	if r.ContentLength > maxBody {
		return tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return chub.Invalid("InvalidRequestContent", "", "reading the request body failed: %v", err)
	}
	if len(body) > maxBody {
		return tooLarge()
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return chub.Invalid("InvalidRequestContent", "", "the request body is empty; send a JSON document")
	}
	return decodeJSON(body, v)
}

func decodeJSON(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return chub.Invalid("InvalidRequestContent", "", "the request content is not valid JSON: %v (at byte %d)", se, se.Offset)
	case errors.As(err, &te):
		target := te.Field
		return chub.Invalid("InvalidRequestContent", target, "the value of '%s' must be of type %s, not %s", target, jsonType(te.Type.Kind().String()), te.Value)
	default:
		return chub.Invalid("InvalidRequestContent", "", "the request content is invalid: %v", err)
	}
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "int", "int64", "int32", "float64", "uint16":
		return "number"
	case "slice", "array":
		return "array"
	default:
		return "object"
	}
}
