package api

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/computehub/chub"
	"github.com/computehub/chub/jobproto"
)

// jobOf loads the job a logs or outputs path names, after checking read.
func (s *Server) jobOf(r *http.Request, p params) (*chub.Job, error) {
	ws, err := s.workspace(r, p)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(r, chub.ActionJobRead, jobScope(ws, p["id"])); err != nil {
		return nil, err
	}
	return s.cfg.Store.GetJob(r.Context(), ws.Scope, p["id"])
}

// jobLogs answers GET .../jobs/{id}/logs?stream=&offset=&follow=: the log
// from offset, as plain text; with follow=true it goes on until the job
// has ended and all of it was sent, each chunk flushed as it comes.
func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request, p params) error {
	q := r.URL.Query()
	stream := q.Get("stream")
	if stream == "" {
		stream = jobproto.StreamLog
	}
	known := false
	for _, st := range jobproto.Streams {
		known = known || st == stream
	}
	if !known {
		return chub.Invalid("InvalidLogStream", "stream", "stream %q is not a job log; use one of %s", stream, strings.Join(jobproto.Streams, ", "))
	}
	var offset int64
	if v := q.Get("offset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return chub.Invalid("InvalidLogOffset", "offset", "offset must be a non-negative number of bytes, got %q", v)
		}
		offset = n
	}
	follow := false
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return chub.Invalid("InvalidQueryParameter", "follow", "follow must be true or false, got %q", v)
		}
		follow = b
	}
	j, err := s.jobOf(r, p)
	if err != nil {
		return err
	}
	if s.cfg.Jobs == nil {
		return chub.Errorf(chub.KindUnavailable, "JobsUnavailable", "", "this server runs no job controller")
	}
	w.Header().Set("X-Chub-Job-Status", string(j.Status))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	err = s.cfg.Jobs.StreamLogs(r.Context(), j, stream, offset, follow, fw)
	if err != nil && !fw.wrote {
		return err // nothing sent yet: the error can still be the answer
	}
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("job log stream ended early", "job", j.ResourceID(), "stream", stream, "err", err)
	}
	if !fw.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

// flushWriter sends every write to the client at once.
type flushWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.wrote = true
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return n, err
	}
	return n, nil
}

// jobOutputs answers GET .../jobs/{id}/outputs[?name=OUTPUT]: the kept
// outputs folder as a tar.gz (outputs/...), or one output's folder only.
func (s *Server) jobOutputs(w http.ResponseWriter, r *http.Request, p params) error {
	name := r.URL.Query().Get("name")
	if name != "" && !jobproto.NamePattern.MatchString(name) {
		return chub.Invalid("InvalidJobOutput", "name", "output name %q is not an output name (a letter or '_', then letters, digits or '_')", name)
	}
	j, err := s.jobOf(r, p)
	if err != nil {
		return err
	}
	if !j.Status.Terminal() {
		return chub.Conflict("JobOutputsNotReady", "name",
			"job %q is %s: its outputs are kept when the job ends; download them then (chub job stream waits for the end)", j.Name, j.Status)
	}
	if name != "" {
		if _, ok := j.Spec.Outputs[name]; !ok {
			return chub.NotFound("name", "job %q has no output %q; its outputs are %s", j.Name, name, strings.Join(sortedKeys(j.Spec.Outputs), ", "))
		}
	}
	if !j.Artifacts.Kept || s.cfg.Artifacts == nil {
		return chub.NotFound("name", "nothing was kept of job %q (it ended before it ran, or its instance went away)", j.Name)
	}
	f, err := s.cfg.Artifacts.OpenOutputs(j.ID)
	if chub.IsNotFound(err) {
		return chub.NotFound("name", "job %q kept no outputs", j.Name)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	file := j.Name + "-outputs.tar.gz"
	if name != "" {
		file = j.Name + "-" + name + ".tar.gz"
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	w.Header().Set("X-Chub-Job-Status", string(j.Status))
	if name == "" {
		if st, err := f.Stat(); err == nil {
			w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		}
		w.WriteHeader(http.StatusOK)
		if _, err := io.Copy(w, f); err != nil && r.Context().Err() == nil {
			s.log.Warn("job outputs download ended early", "job", j.ResourceID(), "err", err)
		}
		return nil
	}
	w.WriteHeader(http.StatusOK)
	if err := filterOutputs(w, f, name); err != nil && r.Context().Err() == nil {
		s.log.Warn("job output download ended early", "job", j.ResourceID(), "output", name, "err", err)
	}
	return nil
}

// filterOutputs re-tars the entries of outputs/<name>/ of a kept tar.gz.
func filterOutputs(w io.Writer, kept io.Reader, name string) error {
	zr, err := gzip.NewReader(kept)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(zr)
	prefix := "outputs/" + name
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		p := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if p != prefix && !strings.HasPrefix(p, prefix+"/") {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
