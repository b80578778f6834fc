package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/jobproto"
)

// defaultMaxLog is the artifact store's default bound of a kept log: a
// running job's log is relayed up to the same bound.
const defaultMaxLog = 64 << 20

func (c *Controller) maxLog() int64 {
	if c.cfg.Artifacts != nil && c.cfg.Artifacts.MaxLog > 0 {
		return c.cfg.Artifacts.MaxLog
	}
	return defaultMaxLog
}

// StreamLogs writes log stream of job j to w from offset: from the agent
// while the job runs, from the artifact store once kept. With follow it
// goes on until the job has ended and everything was written. Offsets count
// the log's bytes. Each chunk is flushed when w can flush (an
// http.ResponseWriter, or anything with Flush()). A job that ended without
// its logs kept (its instance was gone) has nothing more to give. Errors:
// KindInvalid for a bad stream or offset; writing to w failing ends it.
func (c *Controller) StreamLogs(ctx context.Context, j *chub.Job, stream string, offset int64, follow bool, w io.Writer) error {
	if !slices.Contains(jobproto.Streams, stream) {
		return chub.Invalid("InvalidLogStream", "stream", "log stream %q is none of std_log, stdout, stderr", stream)
	}
	if offset < 0 {
		return chub.Invalid("InvalidLogOffset", "offset", "log offset %d is negative; give a byte offset of 0 or more", offset)
	}
	fw := flusher(w)
	max := c.maxLog()
	for tries := 0; ; tries++ {
		changes := c.changes() // taken before the read: a write after it is not missed
		cur, err := c.cfg.Store.GetJobByID(ctx, j.ID)
		if err != nil {
			return fmt.Errorf("read job %s: %w", j.Name, err)
		}
		if cur.Artifacts.Kept {
			return c.keptLog(cur, stream, offset, fw)
		}
		if cur.Status.Terminal() {
			return nil
		}
		relayed, agentErr := false, error(nil)
		if cur.Status != chub.JobNotStarted && cur.Status != chub.JobQueued && offset < max && c.agent != nil {
			var rc io.ReadCloser
			rc, agentErr = c.agent.JobLogs(ctx, cur.ComputeID, cur.ID, stream, offset, follow)
			if agentErr == nil {
				n, werr := relay(fw, io.LimitReader(rc, max-offset))
				rc.Close()
				offset += n
				if werr != nil {
					return werr
				}
				relayed = n > 0
			}
		}
		if !follow {
			// Once more when the agent failed: the job may have been kept
			// just now (the agent forgets a job once it is).
			if agentErr == nil || tries > 0 {
				return nil
			}
			continue
		}
		if relayed {
			continue
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-changes:
		case <-t.C:
		}
		t.Stop()
	}
}

// keptLog writes a kept log from offset.
func (c *Controller) keptLog(j *chub.Job, stream string, offset int64, w io.Writer) error {
	if c.cfg.Artifacts == nil {
		return nil
	}
	f, err := c.cfg.Artifacts.OpenLog(j.ID, stream)
	if errors.Is(err, os.ErrNotExist) || chub.IsNotFound(err) {
		return nil // not kept (the agent did not give it)
	}
	if err != nil {
		return fmt.Errorf("open the kept %s of job %s: %w", stream, j.Name, err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Errorf("seek the kept %s of job %s: %w", stream, j.Name, err)
	}
	_, err = relay(w, f)
	return err
}

// relay copies r to w, returning the bytes written and only w's error: a
// read error (the agent went away) ends the copy quietly, the caller
// re-reads the job and goes on.
func relay(w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			k, werr := w.Write(buf[:m])
			n += int64(k)
			if werr != nil {
				return n, werr
			}
		}
		if rerr != nil {
			return n, nil
		}
	}
}

// flushWriter flushes after every write.
type flushWriter struct {
	w     io.Writer
	flush func() error
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.flush()
	}
	return n, err
}

func flusher(w io.Writer) io.Writer {
	switch x := w.(type) {
	case http.ResponseWriter:
		rc := http.NewResponseController(x)
		return flushWriter{w: w, flush: func() error {
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return err
			}
			return nil
		}}
	case interface{ Flush() error }:
		return flushWriter{w: w, flush: x.Flush}
	case interface{ Flush() }:
		return flushWriter{w: w, flush: func() error { x.Flush(); return nil }}
	}
	return w
}
