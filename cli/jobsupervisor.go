package cli

import (
	"github.com/spf13/cobra"

	"github.com/computehub/chub/agent"
)

// jobSuperviseCmd is `chub agent job-supervise <id>`: the supervisor of
// one job, started by the agent inside an instance (see agent.Supervise).
func jobSuperviseCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "job-supervise ID",
		Short:              "Run one job's command and end its processes (started by the agent)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return agent.Supervise(cmd.Context(), args)
		},
	}
}
