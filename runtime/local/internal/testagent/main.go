// Command testagent is a stand-in for the chub binary in the local
// runtime's tests: it is the container init ("init") and the agent ("agent").
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/computehub/chub/agent"
	"github.com/computehub/chub/runtime/local"
)

func main() {
	local.MaybeInit()
	if len(os.Args) < 2 || os.Args[1] != "agent" {
		fmt.Fprintln(os.Stderr, "usage: testagent agent")
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := agent.Run(context.Background(), agent.Config{Logger: log}); err != nil {
		log.Error("agent failed", "err", err)
		os.Exit(1)
	}
}
