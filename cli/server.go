package cli

import (
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/computehub/chub/agent"
	"github.com/computehub/chub/server"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func serverCmd() *cobra.Command {
	var cfg server.Config
	var logLevel string
	pageSize, _ := strconv.Atoi(envOr("CHUB_PAGE_SIZE", "100"))
	overcommit, _ := strconv.ParseFloat(envOr("CHUB_CPU_OVERCOMMIT", "4"), 64)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the ComputeHub control plane (HTTPS API, reconciler, local runtime)",
		Long: `Run the ComputeHub control plane. Every flag can also be set with a CHUB_* environment
variable (--data-dir is CHUB_DATA_DIR, and so on). The local runtime needs root.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.Out = cmd.OutOrStdout()
			return server.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", envOr("CHUB_DATA_DIR", "./data"), "directory for the store, certificates and instance disks")
	f.StringVar(&cfg.Listen, "listen", envOr("CHUB_LISTEN", "127.0.0.1:8443"), "address to serve HTTPS on")
	f.StringVar(&cfg.Region, "region", envOr("CHUB_REGION", "local"), "the region (Azure location) this server serves")
	f.StringVar(&cfg.Runtime, "runtime", envOr("CHUB_RUNTIME", "local"), "where instances run: local")
	f.StringVar(&cfg.TLSCert, "tls-cert", envOr("CHUB_TLS_CERT", ""), "PEM certificate to serve (default: one signed by a local CA made at first start)")
	f.StringVar(&cfg.TLSKey, "tls-key", envOr("CHUB_TLS_KEY", ""), "PEM key of --tls-cert")
	f.StringVar(&cfg.AppsDomain, "apps-domain", envOr("CHUB_APPS_DOMAIN", "apps.localhost"), "domain[:port] under which each instance's applications get their own origin, https://NAME.<domain>/APP/ (needs a DNS wildcard *.<domain> to this server, and a certificate covering it)")
	f.StringVar(&cfg.AppsTLSCert, "apps-tls-cert", envOr("CHUB_APPS_TLS_CERT", ""), "PEM certificate for *.<apps-domain> when --tls-cert does not cover it")
	f.StringVar(&cfg.AppsTLSKey, "apps-tls-key", envOr("CHUB_APPS_TLS_KEY", ""), "PEM key of --apps-tls-cert")
	f.StringVar(&cfg.SubscriptionID, "subscription-id", envOr("CHUB_SUBSCRIPTION_ID", server.DefaultSubscription), "subscription id of the bootstrapped workspace")
	f.StringVar(&cfg.VMSizesFile, "vm-sizes", envOr("CHUB_VM_SIZES", ""), "JSON file replacing the built-in VM size catalog")
	f.IntVar(&cfg.PageSize, "page-size", pageSize, "computes per list page")
	f.Float64Var(&cfg.CPUOvercommit, "cpu-overcommit", overcommit, "how many vCPUs of a VM size one host core may stand for")
	f.DurationVar(&cfg.Resync, "resync", 30*time.Second, "how often every instance is reconciled even without a change")
	f.DurationVar(&cfg.StopGrace, "stop-grace", 10*time.Second, "how long processes get to exit when an instance stops")
	f.StringVar(&cfg.ExternalURL, "external-url", envOr("CHUB_EXTERNAL_URL", ""), "the server's address as users reach it, the base of the URLs the API returns (default: https:// and --listen, or this machine's name when listening on every address)")
	f.StringVar(&cfg.SSHPorts, "ssh-ports", envOr("CHUB_SSH_PORTS", "50000-50999"), "range of host ports given to instances with SSH enabled (FIRST-LAST)")
	f.StringVar(&cfg.InstanceHostPorts, "instance-host-ports", envOr("CHUB_INSTANCE_HOST_PORTS", ""), "ports of the host's loopback instances may reach at 10.0.2.2 besides the API's (e.g. 5432,8000-8010)")
	f.StringVar(&logLevel, "log-level", envOr("CHUB_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	return cmd
}

func agentCmd() *cobra.Command {
	var cfg agent.Config
	cmd := &cobra.Command{
		Use:    "agent",
		Short:  "Run inside an instance as its init and supervisor (started by the runtime)",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
			return agent.Run(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.SocketPath, "socket", "", "unix socket to serve the control plane on (default /run/chub/agent.sock)")
	cmd.Flags().IntVar(&cfg.ListenFD, "listen-fd", 0, "serve on this inherited listening unix socket instead of --socket (the local runtime passes 3)")
	cmd.Flags().StringVar(&cfg.User, "user", "", "the instance's user (default azureuser)")
	cmd.Flags().DurationVar(&cfg.TerminalKeep, "terminal-keep", agent.DefaultTerminalKeep, "how long a terminal session nobody is attached to waits for a re-attach")
	cmd.AddCommand(jobSuperviseCmd())
	return cmd
}
