package cli

import (
	"errors"
	"io"
	"os"

	"github.com/pkg/sftp"
	"github.com/spf13/cobra"
)

// sftpServerCmd serves the SFTP protocol on stdin/stdout. The SSH gateway
// runs it inside an instance, as the instance's user, for the sftp
// subsystem (sftp, scp and rsync-over-sftp clients).
func sftpServerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "sftp-server",
		Short:  "Serve SFTP on standard input and output (run inside an instance by the SSH gateway)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts []sftp.ServerOption
			if wd, err := os.Getwd(); err == nil {
				opts = append(opts, sftp.WithServerWorkingDirectory(wd))
			}
			srv, err := sftp.NewServer(stdio{}, opts...)
			if err != nil {
				return err
			}
			if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			return nil
		},
	}
}

// stdio is the process's standard input and output as one stream.
type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error {
	return errors.Join(os.Stdin.Close(), os.Stdout.Close())
}
