// Package artifacts keeps, on the server's disk, what jobs need and leave:
// uploaded blobs (code snapshots, gzip-compressed tarballs checked at
// upload) and, for every ended job, its logs and its outputs. Files live
// under one directory the server owns (mode 0700); nothing an instance
// writes is ever read from there without the bounds given here.
//
// Layout under Store.Dir: blobs/<id>.tar.gz, jobs/<job>/<stream>.txt and
// jobs/<job>/outputs.tar.gz. Every file is written to a temporary file
// first and renamed into place, so a half-written one never looks stored.
package artifacts

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/jobproto"
)

// The defaults of Store's bounds.
const (
	DefaultMaxBlob    = 1 << 30
	DefaultMaxLog     = 64 << 20
	DefaultMaxOutputs = 1 << 30
)

// MaxEntries bounds the entries of an uploaded tarball and of a job's
// outputs.
const MaxEntries = 100_000

// Store is the artifact directory.
type Store struct {
	Dir string
	// MaxBlob bounds an upload (default 1 GiB); MaxLog each kept log
	// (default 64 MiB); MaxOutputs the kept outputs of one job (default 1 GiB).
	MaxBlob, MaxLog, MaxOutputs int64
}

// idPattern is what a blob or job id must match before it names a file.
var idPattern = regexp.MustCompile(`^[a-zA-Z0-9-]{1,64}$`)

func checkID(what, id string) error {
	if !idPattern.MatchString(id) {
		return chub.Invalid("InvalidId", "id", "%s id %q is not 1 to 64 letters, digits and dashes", what, id)
	}
	return nil
}

func bound(v, def int64) int64 {
	if v <= 0 {
		return def
	}
	return v
}

func (s *Store) maxBlob() int64    { return bound(s.MaxBlob, DefaultMaxBlob) }
func (s *Store) maxLog() int64     { return bound(s.MaxLog, DefaultMaxLog) }
func (s *Store) maxOutputs() int64 { return bound(s.MaxOutputs, DefaultMaxOutputs) }

// dir makes (if needed) and returns a directory under Dir.
func (s *Store) dir(elem ...string) (string, error) {
	if s.Dir == "" {
		return "", errors.New("artifacts: the store has no directory")
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", fmt.Errorf("make the artifact directory: %w", err)
	}
	d := filepath.Join(append([]string{s.Dir}, elem...)...)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("make artifact directory %s: %w", d, err)
	}
	return d, nil
}

func (s *Store) blobPath(id string) string { return filepath.Join(s.Dir, "blobs", id+".tar.gz") }
func (s *Store) jobDir(job string) string  { return filepath.Join(s.Dir, "jobs", job) }

// tempFile makes a temporary file (mode 0600) in dir; the caller renames
// or removes it.
func tempFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("make a temporary file in %s: %w", dir, err)
	}
	return f, nil
}

// finish syncs and closes a temporary file; on failure it removes it.
func finish(f *os.File) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return nil
}

func discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// open opens a stored file, never following a link.
func open(path string, missing func() error) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, missing()
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// errReader remembers the error its reader returned (io.EOF aside), to
// tell a failing source from a failing disk.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

func tooLarge(limit int64) error {
	return chub.Errorf(chub.KindTooLarge, "RequestEntityTooLarge", "",
		"the upload is larger than the limit of %d bytes; leave data, environments and build output out of the code folder", limit)
}

// PutBlob stores blob id's content, a gzip-compressed tar that must hold
// only regular files and directories (symlinks allowed when they stay
// inside) with relative paths that stay inside, refusing it otherwise
// (KindInvalid) or over MaxBlob (KindTooLarge). It returns the size and
// the hex SHA-256. A blob already stored is not replaced (KindConflict).
func (s *Store) PutBlob(id string, r io.Reader) (size int64, sha256sum string, err error) {
	if err := checkID("blob", id); err != nil {
		return 0, "", err
	}
	dir, err := s.dir("blobs")
	if err != nil {
		return 0, "", err
	}
	final := s.blobPath(id)
	if _, err := os.Lstat(final); err == nil {
		return 0, "", alreadyStored(id)
	}
	f, err := tempFile(dir)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	limit := s.maxBlob()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit+1))
	if err != nil {
		discard(f)
		return 0, "", fmt.Errorf("receive blob %s: %w", id, err)
	}
	if n > limit {
		discard(f)
		return 0, "", tooLarge(limit)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		discard(f)
		return 0, "", fmt.Errorf("check blob %s: %w", id, err)
	}
	if err := checkGzipTar(f, MaxEntries); err != nil {
		discard(f)
		return 0, "", err
	}
	if err := finish(f); err != nil {
		return 0, "", err
	}
	// A link, unlike a rename, never replaces: of two uploads at once,
	// one is stored and the other refused.
	err = os.Link(f.Name(), final)
	os.Remove(f.Name())
	if errors.Is(err, fs.ErrExist) {
		return 0, "", alreadyStored(id)
	}
	if err != nil {
		return 0, "", fmt.Errorf("store blob %s: %w", id, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func alreadyStored(id string) error {
	return chub.Conflict("BlobAlreadyUploaded", "id", "blob %s was already uploaded; a blob's content is written once: start a new upload", id)
}

// OpenBlob opens blob id's content.
func (s *Store) OpenBlob(id string) (*os.File, error) {
	if err := checkID("blob", id); err != nil {
		return nil, err
	}
	return open(s.blobPath(id), func() error {
		return chub.NotFound("blobId", "the content of blob %s is not stored; upload it first", id)
	})
}

func checkStream(stream string) error {
	if !slices.Contains(jobproto.Streams, stream) {
		return chub.Invalid("InvalidLogStream", "stream", "log stream %q is not one of std_log, stdout, stderr", stream)
	}
	return nil
}

// PutLog keeps one log of job id (stream is a jobproto stream name),
// reading at most MaxLog bytes; truncated says there was more. A kept log
// is replaced. When reading r fails, what was read is kept, reported as
// truncated, and the error returned.
func (s *Store) PutLog(job, stream string, r io.Reader) (n int64, truncated bool, err error) {
	if err := checkID("job", job); err != nil {
		return 0, false, err
	}
	if err := checkStream(stream); err != nil {
		return 0, false, err
	}
	dir, err := s.dir("jobs", job)
	if err != nil {
		return 0, false, err
	}
	f, err := tempFile(dir)
	if err != nil {
		return 0, false, err
	}
	limit := s.maxLog()
	src := &errReader{r: io.LimitReader(r, limit+1)}
	n, err = io.Copy(f, src)
	readErr := src.err
	if err != nil && readErr == nil { // the disk failed, not r
		discard(f)
		return 0, false, fmt.Errorf("keep %s log of job %s: %w", stream, job, err)
	}
	truncated = readErr != nil
	if n > limit {
		if err := f.Truncate(limit); err != nil {
			discard(f)
			return 0, false, fmt.Errorf("keep %s log of job %s: %w", stream, job, err)
		}
		n, truncated = limit, true
	}
	if err := finish(f); err != nil {
		return 0, false, err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, stream+".txt")); err != nil {
		os.Remove(f.Name())
		return 0, false, fmt.Errorf("keep %s log of job %s: %w", stream, job, err)
	}
	if readErr != nil {
		return n, truncated, fmt.Errorf("read %s log of job %s: %w", stream, job, readErr)
	}
	return n, truncated, nil
}

// OpenLog opens a kept log.
func (s *Store) OpenLog(job, stream string) (*os.File, error) {
	if err := checkID("job", job); err != nil {
		return nil, err
	}
	if err := checkStream(stream); err != nil {
		return nil, err
	}
	return open(filepath.Join(s.jobDir(job), stream+".txt"), func() error {
		return chub.NotFound("stream", "the %s log of job %s is not kept", stream, job)
	})
}

// PutOutputs keeps the outputs of job id, a tar stream from the agent
// (entries named outputs/...), stored gzip-compressed; it keeps at most
// MaxOutputs bytes of content (n is what was kept) and only regular
// files and directories with clean paths under outputs/, skipping
// anything else. The stored archive is written anew, so it is always a
// well-formed tar.gz. A stream that is malformed or ends too early keeps
// the whole entries before the fault, reported as truncated; when reading
// r fails, the error is returned as well. Kept outputs are replaced.
func (s *Store) PutOutputs(job string, r io.Reader) (n int64, truncated bool, err error) {
	if err := checkID("job", job); err != nil {
		return 0, false, err
	}
	dir, err := s.dir("jobs", job)
	if err != nil {
		return 0, false, err
	}
	spool, err := tempFile(dir)
	if err != nil {
		return 0, false, err
	}
	defer discard(spool)
	n, truncated, readErr, err := copyOutputs(spool, r, s.maxOutputs(), MaxEntries)
	if err != nil {
		return 0, false, fmt.Errorf("keep outputs of job %s: %w", job, err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return 0, false, fmt.Errorf("keep outputs of job %s: %w", job, err)
	}
	f, err := tempFile(dir)
	if err != nil {
		return 0, false, err
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if _, err := io.Copy(zw, spool); err != nil {
		discard(f)
		return 0, false, fmt.Errorf("keep outputs of job %s: %w", job, err)
	}
	if err := zw.Close(); err != nil {
		discard(f)
		return 0, false, fmt.Errorf("keep outputs of job %s: %w", job, err)
	}
	if err := finish(f); err != nil {
		return 0, false, err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, "outputs.tar.gz")); err != nil {
		os.Remove(f.Name())
		return 0, false, fmt.Errorf("keep outputs of job %s: %w", job, err)
	}
	if readErr != nil {
		return n, truncated, fmt.Errorf("read outputs of job %s: %w", job, readErr)
	}
	return n, truncated, nil
}

// OpenOutputs opens job id's kept outputs (a tar.gz).
func (s *Store) OpenOutputs(job string) (*os.File, error) {
	if err := checkID("job", job); err != nil {
		return nil, err
	}
	return open(filepath.Join(s.jobDir(job), "outputs.tar.gz"), func() error {
		return chub.NotFound("name", "no outputs of job %s are kept", job)
	})
}

// RemoveJob forgets everything kept of a job; a job with nothing kept is
// not an error.
func (s *Store) RemoveJob(job string) error {
	if err := checkID("job", job); err != nil {
		return err
	}
	if s.Dir == "" {
		return errors.New("artifacts: the store has no directory")
	}
	if err := os.RemoveAll(s.jobDir(job)); err != nil {
		return fmt.Errorf("remove what is kept of job %s: %w", job, err)
	}
	return nil
}

// tarHeaderFor is the clean header a kept entry is written with.
func tarHeaderFor(name string, h *tar.Header) *tar.Header {
	out := &tar.Header{Name: name, Mode: h.Mode & 0o777, ModTime: h.ModTime.Truncate(time.Second)}
	if h.Typeflag == tar.TypeDir {
		out.Typeflag, out.Name = tar.TypeDir, name+"/"
	} else {
		out.Typeflag, out.Size = tar.TypeReg, h.Size
	}
	return out
}

// RemoveBlob forgets an uploaded blob; an absent one is not an error.
func (s *Store) RemoveBlob(id string) error {
	if err := checkID("blob", id); err != nil {
		return err
	}
	if s.Dir == "" {
		return errors.New("artifacts: the store has no directory")
	}
	if err := os.Remove(s.blobPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove blob %s: %w", id, err)
	}
	return nil
}
