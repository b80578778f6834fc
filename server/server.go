// Package server wires ComputeHub's control plane together: TLS, the store,
// the runtime, the reconciler and the API, with a first-start bootstrap and
// a graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/computehub/chub"
	"github.com/computehub/chub/access"
	"github.com/computehub/chub/agentclient"
	"github.com/computehub/chub/api"
	"github.com/computehub/chub/artifacts"
	"github.com/computehub/chub/certs"
	appgateway "github.com/computehub/chub/gateway/apps"
	"github.com/computehub/chub/gateway/sshgate"
	"github.com/computehub/chub/jobs"
	"github.com/computehub/chub/lifecycle"
	"github.com/computehub/chub/reconciler"
	"github.com/computehub/chub/runtime/local"
	"github.com/computehub/chub/sqlite"
	"github.com/computehub/chub/studio"
)

// Config is the server's configuration (flags and CHUB_* variables).
type Config struct {
	DataDir        string
	Listen         string
	Region         string
	Runtime        string
	TLSCert        string
	TLSKey         string
	SubscriptionID string
	VMSizesFile    string
	PageSize       int
	CPUOvercommit  float64
	Resync         time.Duration
	StopGrace      time.Duration
	// SSHPorts is the range of host ports given to instances with SSH
	// enabled ("50000-50999" when empty).
	SSHPorts string
	// InstanceHostPorts lists the ports of the host's loopback instances
	// may reach through 10.0.2.2 besides the API's ("5432,8000-8010").
	InstanceHostPorts string
	// ExternalURL is how users reach the server (https://HOST[:PORT]), the
	// base of the URLs the API hands out; "" derives it from Listen
	// (ResolveExternalURL). The Host header of a request is never used.
	ExternalURL string
	// AppsDomain is the domain under which each instance's applications get
	// their own origin, https://NAME.<AppsDomain>/APP/ ("apps.localhost" when
	// empty); a ":PORT" suffix sets the port of those URLs (default: the
	// external URL's).
	AppsDomain string
	// AppsTLSCert and AppsTLSKey are a certificate for *.<AppsDomain> when
	// TLSCert does not cover it.
	AppsTLSCert, AppsTLSKey string
	// Out receives the first-start messages meant for a person (token, CA path).
	Out    io.Writer
	Logger *slog.Logger
}

// DefaultSubscription is the subscription bootstrapped when none is given.
const DefaultSubscription = "00000000-0000-0000-0000-000000000000"

// Run serves until ctx ends, then shuts down gracefully. Running instances
// are left running.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	externalURL, err := ResolveExternalURL(cfg.ExternalURL, cfg.Listen)
	if err != nil {
		return err
	}
	if err := privateStore(dataDir); err != nil {
		return err
	}
	appsDomain, appsPort, err := AppsOrigin(cfg.AppsDomain, externalURL)
	if err != nil {
		return err
	}
	tlsConfig, caPath, err := setupTLS(cfg, dataDir, appsDomain)
	if err != nil {
		return err
	}
	catalog := chub.BuiltinCatalog()
	if cfg.VMSizesFile != "" {
		data, err := os.ReadFile(cfg.VMSizesFile)
		if err != nil {
			return fmt.Errorf("read VM size catalog: %w", err)
		}
		if catalog, err = chub.ParseCatalog(data); err != nil {
			return fmt.Errorf("%s: %w", cfg.VMSizesFile, err)
		}
	}
	catalogFn := func() *chub.Catalog { return catalog }

	store, err := sqlite.Open(ctx, filepath.Join(dataDir, "chub.db"))
	if err != nil {
		return err
	}
	defer store.Close()

	var rt chub.Runtime
	var checkSize func(chub.InstanceSpec) error
	var checkImage func(string) error
	switch cfg.Runtime {
	case "local", "":
		root := LocalRuntimeRoot(dataDir)
		hostPorts, err := instanceHostPorts(cfg.Listen, cfg.InstanceHostPorts)
		if err != nil {
			return err
		}
		lr, err := local.New(local.Config{Root: root, CPUOvercommit: cfg.CPUOvercommit, HostPorts: hostPorts, Logger: log})
		if err != nil {
			return fmt.Errorf("the local runtime cannot run on this host: %w", err)
		}
		rt, checkSize = lr, lr.CheckSize
		go func() {
			start := time.Now()
			if err := lr.PrepareDefaultImage(ctx); err != nil {
				log.Error("preparing the default image failed; instances will retry it", "err", err)
				return
			}
			log.Debug("default image ready", "took", time.Since(start))
		}()
		checkImage = func(name string) error { return checkLocalImage(root, name) }
	default:
		return fmt.Errorf("unknown runtime %q: this build offers --runtime local", cfg.Runtime)
	}

	if err := bootstrap(ctx, store, dataDir, cfg, cfg.Out); err != nil {
		return err
	}

	agents := &agentclient.Client{Runtime: rt}
	sshPorts := sshgate.DefaultPorts
	if cfg.SSHPorts != "" {
		if sshPorts, err = sshgate.ParsePortRange(cfg.SSHPorts); err != nil {
			return fmt.Errorf("--ssh-ports: %w", err)
		}
	}
	hostKey, err := sshgate.LoadOrCreateHostKey(filepath.Join(dataDir, "ssh"))
	if err != nil {
		return err
	}
	sshHost, _, _ := net.SplitHostPort(cfg.Listen)
	sshGate := sshgate.New(sshgate.Config{Store: store, Agents: agents, HostKey: hostKey, Host: sshHost, Logger: log,
		Audit: func(ctx context.Context, computeID, result, remote string) {
			auditSSH(ctx, store, log, computeID, result, remote)
		}})
	sshAlloc := &sshgate.Allocator{Range: sshPorts, Store: store, Host: sshHost}
	// Jobs: the artifact store (uploads, kept logs and outputs) and the
	// queues; a stop waits for an instance's jobs, a delete cancels them.
	arts := &artifacts.Store{Dir: filepath.Join(dataDir, "artifacts")}
	var rec *reconciler.Reconciler
	jobCtl := jobs.New(jobs.Config{Store: store, Runtime: rt, Agents: agents, Artifacts: arts, Catalog: catalogFn, Logger: log,
		WakeInstance: func(id string) { rec.Wake(id) }})
	rec = reconciler.New(reconciler.Config{Store: store, Runtime: rt, Catalog: catalogFn, Logger: log, Resync: cfg.Resync, StopGrace: cfg.StopGrace,
		Observe: agents.Observe, BusyJobs: jobCtl.BusyJobs,
		Converged: func(id string, st chub.State) {
			if st == chub.StateRunning {
				jobCtl.Wake(id) // jobs queued while it was stopped
			}
		}})
	life := &lifecycle.Service{Store: store, Catalog: catalogFn, Region: cfg.Region, Wake: rec.Wake, CheckSize: checkSize, CheckImage: checkImage,
		CancelJobs: jobCtl.CancelAll}
	life.Wake = func(id string) { rec.Wake(id); sshGate.Wake(id) }
	life.CheckSSHKey, life.PickSSHPort = sshgate.CheckKey, sshAlloc.Pick
	var appGate *appgateway.Gateway
	apiServer := api.New(api.Config{Store: store, Lifecycle: life, Authorizer: &access.RBAC{Store: store}, Runtime: rt,
		Catalog: catalogFn, Region: cfg.Region, PageSize: cfg.PageSize, Logger: log, PublicHost: sshgate.PublicHost(cfg.Listen),
		ExternalURL: externalURL, AppURL: func(instance, app string) string { return appGate.URL(instance, app) },
		Jobs: jobCtl, Artifacts: arts})

	sessionKey, err := appgateway.LoadOrCreateKey(filepath.Join(dataDir, "apps-session.key"))
	if err != nil {
		return fmt.Errorf("application session key: %w", err)
	}
	appGate, err = appgateway.New(appgateway.Config{Domain: appsDomain, Port: appsPort, Store: store, Authorizer: &access.RBAC{Store: store}, Agents: agents,
		Audit: func(ctx context.Context, e *chub.AuditEntry) {
			if err := store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
				log.Error("audit log write failed", "err", err)
			}
		},
		HashToken: api.HashToken, SessionKey: sessionKey, Logger: log})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	// The API serves every path; gateways (applications, terminals) mount
	// their own prefixes beside it. Application origins (NAME.<apps
	// domain>) get the application gateway only.
	mux := http.NewServeMux()
	// Studio owns the root and its pages; the API every other path.
	studioUI := studio.Handler()
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if studio.Owns(r.URL.Path) {
			studioUI.ServeHTTP(w, r)
			return
		}
		apiServer.ServeHTTP(w, r)
	}))
	mux.Handle(appgateway.Prefix, http.HandlerFunc(appGate.ServeHandoff))
	paths := armPaths(mux)
	httpServer := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if appGate.Owns(r.Host) {
				appGate.ServeHTTP(w, r)
				return
			}
			paths.ServeHTTP(w, r)
		}),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		rec.Run(recCtx)
	}()
	sshDone := make(chan struct{})
	go func() {
		defer close(sshDone)
		sshGate.Run(recCtx)
	}()
	jobsDone := make(chan struct{})
	go func() {
		defer close(jobsDone)
		jobCtl.Run(recCtx)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.ServeTLS(ln, "", "") }()
	apiServer.SetReady(true)
	log.Info("chub server ready", "url", externalURL, "listen", ln.Addr().String(), "region", cfg.Region, "runtime", rt.Name(), "data_dir", dataDir, "ca", caPath)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopRec()
		<-recDone
		<-sshDone
		<-jobsDone
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("shutting down; running instances keep running")
	apiServer.SetReady(false)
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := httpServer.Shutdown(shutCtx); err != nil {
		httpServer.Close()
	}
	stopRec()
	<-recDone
	<-sshDone
	<-jobsDone
	log.Info("stopped")
	return nil
}

// AppsOrigin checks the --apps-domain flag (DOMAIN or DOMAIN:PORT; "" is
// appgateway.DefaultDomain) and returns the domain and the port of the
// application URLs (the external URL's when the flag has none; "" for 443).
func AppsOrigin(flag, externalURL string) (domain, port string, err error) {
	domain = strings.ToLower(strings.TrimSpace(flag))
	if domain == "" {
		domain = appgateway.DefaultDomain
	}
	if h, p, err := net.SplitHostPort(domain); err == nil {
		domain, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("--apps-domain %q: the port must be a number from 1 to 65535", flag)
		}
	} else if u, err := url.Parse(externalURL); err == nil {
		port = u.Port()
	}
	labels := strings.Split(domain, ".")
	ok := len(labels) >= 2
	for _, l := range labels {
		ok = ok && l != "" && len(l) <= 63 && strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") == "" && l[0] != '-' && l[len(l)-1] != '-'
	}
	if !ok || net.ParseIP(domain) != nil {
		return "", "", fmt.Errorf("--apps-domain %q must be a DNS name of at least two labels (such as apps.localhost or apps.chub.example.com): each instance gets the name NAME.<domain>", flag)
	}
	if port == "443" {
		port = ""
	}
	return domain, port, nil
}

func setupTLS(cfg Config, dataDir, appsDomain string) (*tls.Config, string, error) {
	certFile, keyFile, caPath := cfg.TLSCert, cfg.TLSKey, ""
	if (certFile == "") != (keyFile == "") {
		return nil, "", errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if (cfg.AppsTLSCert == "") != (cfg.AppsTLSKey == "") {
		return nil, "", errors.New("--apps-tls-cert and --apps-tls-key go together: give both or neither")
	}
	// The application origins need *.<apps domain> (a wildcard one label
	// below the domain, which browsers accept: apps.localhost is no public suffix).
	wildcard := "*." + appsDomain
	if certFile == "" {
		p := certs.In(filepath.Join(dataDir, "tls"))
		host, _, _ := net.SplitHostPort(cfg.Listen)
		var hosts []string
		if host != "" && host != "0.0.0.0" && host != "::" {
			hosts = append(hosts, host)
		}
		if hn, err := os.Hostname(); err == nil {
			hosts = append(hosts, hn)
		}
		if u, err := url.Parse(cfg.ExternalURL); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname()) // clients verify the name they reach the server by
		}
		if cfg.AppsTLSCert == "" {
			hosts = append(hosts, wildcard)
		}
		made, err := certs.Ensure(p, hosts)
		if err != nil {
			return nil, "", fmt.Errorf("make TLS certificate: %w", err)
		}
		certFile, keyFile, caPath = p.Cert, p.Key, p.CACert
		if made {
			fmt.Fprintf(cfg.Out, "Made a local certificate authority for HTTPS: %s\n  (trust it with CHUB_CA_CERT=%s, or pass --tls-cert/--tls-key for a real certificate)\n", caPath, caPath)
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("load TLS certificate: %w", err)
	}
	pairs := []tls.Certificate{pair}
	switch {
	case cfg.AppsTLSCert != "":
		apps, err := tls.LoadX509KeyPair(cfg.AppsTLSCert, cfg.AppsTLSKey)
		if err != nil {
			return nil, "", fmt.Errorf("load --apps-tls-cert: %w", err)
		}
		if apps.Leaf != nil && apps.Leaf.VerifyHostname("x."+appsDomain) != nil {
			return nil, "", fmt.Errorf("--apps-tls-cert does not cover %s (the application origins NAME.%s)", wildcard, appsDomain)
		}
		pairs = append(pairs, apps)
	case pair.Leaf != nil && pair.Leaf.VerifyHostname("x."+appsDomain) != nil:
		// A real certificate that does not cover the application origins:
		// they get one of the local CA, which browsers trust only if told to.
		p := certs.In(filepath.Join(dataDir, "tls"))
		p.Cert, p.Key = filepath.Join(dataDir, "tls", "apps.crt"), filepath.Join(dataDir, "tls", "apps.key")
		if _, err := certs.Ensure(p, []string{wildcard}); err != nil {
			return nil, "", fmt.Errorf("make TLS certificate for %s: %w", wildcard, err)
		}
		apps, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil {
			return nil, "", fmt.Errorf("load TLS certificate: %w", err)
		}
		pairs = append(pairs, apps)
		fmt.Fprintf(cfg.Out, "--tls-cert does not cover %s: the application origins use a certificate of the local CA %s; give --apps-tls-cert/--apps-tls-key for a real one\n", wildcard, p.CACert)
	}
	// With several certificates the one whose names match the client's SNI is served.
	return &tls.Config{Certificates: pairs, MinVersion: tls.VersionTLS12}, caPath, nil
}

// bootstrap makes, on first start, the admin user and token, and the
// default resource group and workspace.
func bootstrap(ctx context.Context, store chub.Store, dataDir string, cfg Config, out io.Writer) error {
	sub := cfg.SubscriptionID
	if sub == "" {
		sub = DefaultSubscription
	}
	admin, err := store.UserByName(ctx, "admin")
	if chub.IsNotFound(err) {
		admin, err = api.NewUser("admin", "Administrator", "", true)
		if err != nil {
			return err
		}
		if err := store.CreateUser(ctx, admin); err != nil {
			return err
		}
		secret, tok := api.NewToken(admin.ID, "bootstrap", 0)
		if err := store.CreateToken(ctx, tok); err != nil {
			return err
		}
		path := filepath.Join(dataDir, "admin-token")
		if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
			return fmt.Errorf("write admin token: %w", err)
		}
		if isTerminal(out) {
			fmt.Fprintf(out, "Created user 'admin'. Its API token (shown once, also in %s):\n  %s\n", path, secret)
		} else {
			fmt.Fprintf(out, "Created user 'admin'. Its API token is in %s (mode 0600); log in with: chub login --server URL --token-file %s\n", path, path)
		}
	} else if err != nil {
		return err
	}
	// The administrator is an Owner of everything.
	if as, err := store.ListRoleAssignments(ctx, admin.ID); err != nil {
		return err
	} else if len(as) == 0 {
		if err := api.Grant(ctx, store, admin.ID, access.OwnerID, chub.RootScope, admin.ID); err != nil {
			return err
		}
	}
	scope := chub.WorkspaceScope{Subscription: sub, ResourceGroup: "default", Workspace: "default"}
	if _, err := store.GetWorkspace(ctx, scope); chub.IsNotFound(err) {
		now := time.Now().UTC()
		ws := &chub.Workspace{ID: lifecycle.NewID(), Scope: scope, Location: strings.ToLower(cfg.Region), FriendlyName: "Default workspace",
			CreatedBy: admin.Principal(), CreatedAt: now, ModifiedAt: now}
		if _, err := store.PutWorkspace(ctx, ws); err != nil {
			return err
		}
		fmt.Fprintf(out, "Created workspace 'default' in resource group 'default' of subscription %s.\n", sub)
	} else if err != nil {
		return err
	}
	return nil
}

// isTerminal reports whether w is an interactive terminal: the admin token
// is printed only there, never into a log or a pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// privateStore makes the data dir 0700 and the store's files (chub.db and
// its WAL, SHM and journal files) 0600, also when an older version left
// them readable to everyone. SQLite gives the files it adds the database
// file's mode, so a database created here 0600 keeps them so.
func privateStore(dataDir string) error {
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	db := filepath.Join(dataDir, "chub.db")
	f, err := os.OpenFile(db, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	f.Close()
	for _, p := range []string{db, db + "-wal", db + "-shm", db + "-journal", filepath.Join(dataDir, "admin-token")} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

// ResolveExternalURL is the server's external URL: flag when given (an
// https URL with a host and nothing after it), else https:// and the
// --listen address, with this machine's host name when the server listens
// on every address.
func ResolveExternalURL(flag, listen string) (string, error) {
	if flag != "" {
		u, err := url.Parse(flag)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("--external-url %q must be an https URL with a host and no path, such as https://chub.example.com or https://10.0.0.5:8443", flag)
		}
		return "https://" + u.Host, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = sshgate.PublicHost(listen)
	}
	if port == "443" {
		return "https://" + host, nil
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

// LocalRuntimeRoot is where the local runtime keeps disks and images under a data dir.
func LocalRuntimeRoot(dataDir string) string { return filepath.Join(dataDir, "runtime", "local") }

func checkLocalImage(root, name string) error {
	if name == local.HostImage {
		return nil
	}
	imgs, err := local.ListImages(root)
	if err != nil {
		return err
	}
	var names []string
	for _, im := range imgs {
		if im.Name == name {
			return nil
		}
		names = append(names, im.Name)
	}
	return chub.Invalid("ImageNotFound", "properties.properties.image", "image %q does not exist on this server; import it with 'chub image import %s PATH' (images here: %s)", name, name, strings.Join(append(names, local.HostImage), ", "))
}

// auditSSH records an SSH connection to an instance: its user (the holder
// of the instance's key) and the outcome.
func auditSSH(ctx context.Context, store chub.Store, log *slog.Logger, computeID, result, remote string) {
	e := &chub.AuditEntry{Time: time.Now().UTC(), Action: "ComputeHub/ssh/connect", Resource: computeID, Result: result, Status: 200}
	switch result {
	case "Succeeded":
	case "Refused": // authenticated, but the instance is not Running (as the API's InvalidComputeState)
		e.Status = 409
	default:
		e.Status = 401
	}
	if host, _, err := net.SplitHostPort(remote); err == nil {
		e.ClientAddress = host
	}
	if c, err := store.GetComputeByID(ctx, computeID); err == nil {
		e.Resource = c.ResourceID()
		e.PrincipalID = c.Owner()
		if u, err := store.UserByID(ctx, c.Owner()); err == nil {
			e.PrincipalName = u.Name
		}
	}
	if err := store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		log.Error("audit log write failed", "err", err)
	}
}

// instanceHostPorts are the host loopback ports instances reach: the API's
// listen port (for the CLI inside an instance) and the admin's list.
func instanceHostPorts(listen, extra string) ([]uint16, error) {
	ports, err := local.ParseHostPorts(extra)
	if err != nil {
		return nil, fmt.Errorf("--instance-host-ports: %w", err)
	}
	if _, p, err := net.SplitHostPort(listen); err == nil {
		if api, err := local.ParseHostPorts(p); err == nil {
			ports = append(ports, api...)
		}
	}
	return ports, nil
}
