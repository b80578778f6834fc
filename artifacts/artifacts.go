// Package artifacts keeps, on the server's disk, what jobs need and leave:
// uploaded blobs (code snapshots, gzip-compressed tarballs checked at
// upload) and, for every ended job, its logs and its outputs. Files live
// under one directory the server owns (mode 0700); nothing an instance
// writes is ever read from there without the bounds given here.
package artifacts

import (
	"errors"
	"io"
	"os"
)

// Store is the artifact directory.
type Store struct {
	Dir string
	// MaxBlob bounds an upload (default 1 GiB); MaxLog each kept log
	// (default 64 MiB); MaxOutputs the kept outputs of one job (default 1 GiB).
	MaxBlob, MaxLog, MaxOutputs int64
}

var errTODO = errors.New("artifacts: not implemented yet")

// PutBlob stores blob id's content, a gzip-compressed tar that must hold
// only regular files and directories (symlinks allowed when they stay
// inside) with relative paths that stay inside, refusing it otherwise
// (KindInvalid) or over MaxBlob (KindTooLarge). It returns the size and
// the hex SHA-256. A blob already stored is not replaced.
func (s *Store) PutBlob(id string, r io.Reader) (size int64, sha256 string, err error) {
	return 0, "", errTODO
}

// OpenBlob opens blob id's content.
func (s *Store) OpenBlob(id string) (*os.File, error) { return nil, errTODO }

// PutLog keeps one log of job id (stream is a jobproto stream name),
// reading at most MaxLog bytes; truncated says there was more.
func (s *Store) PutLog(job, stream string, r io.Reader) (n int64, truncated bool, err error) {
	return 0, false, errTODO
}

// OpenLog opens a kept log.
func (s *Store) OpenLog(job, stream string) (*os.File, error) { return nil, errTODO }

// PutOutputs keeps the outputs of job id, a tar stream from the agent,
// stored gzip-compressed; it keeps at most MaxOutputs bytes of content
// and only regular files and directories with paths that stay inside.
func (s *Store) PutOutputs(job string, r io.Reader) (n int64, truncated bool, err error) {
	return 0, false, errTODO
}

// OpenOutputs opens job id's kept outputs (a tar.gz).
func (s *Store) OpenOutputs(job string) (*os.File, error) { return nil, errTODO }

// RemoveJob forgets everything kept of a job.
func (s *Store) RemoveJob(job string) error { return errTODO }
