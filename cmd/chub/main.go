// Command chub is ComputeHub's one binary: the server, the in-instance
// agent and the command line.
package main

import (
	"os"

	"github.com/computehub/chub/cli"
	"github.com/computehub/chub/runtime/local"
)

func main() {
	// A container being started re-executes this binary as "chub init";
	// libcontainer must take over before anything else runs.
	local.MaybeInit()
	os.Exit(cli.Main(os.Args[1:]))
}
