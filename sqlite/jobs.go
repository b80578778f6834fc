package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/computehub/chub"
)

const jobCols = `j.id, j.workspace_id, w.subscription, w.resource_group, w.name, j.name, j.compute_id, j.seq, j.status, j.spec,
	j.message, j.error, j.exit_code, j.archived, j.created_by, j.created_at, j.modified_by, j.modified_at,
	j.start_time, j.end_time, j.artifacts, j.version`

const jobFrom = ` FROM jobs j JOIN workspaces w ON w.id = j.workspace_id `

func scanJob(row interface{ Scan(...any) error }) (*chub.Job, error) {
	var j chub.Job
	var spec, createdBy, createdAt, modifiedBy, modifiedAt, artifacts string
	var jobErr, start, end sql.NullString
	var exit sql.NullInt64
	if err := row.Scan(&j.ID, &j.WorkspaceID, &j.Scope.Subscription, &j.Scope.ResourceGroup, &j.Scope.Workspace, &j.Name, &j.ComputeID,
		&j.Seq, &j.Status, &spec, &j.Message, &jobErr, &exit, &j.Archived, &createdBy, &createdAt, &modifiedBy, &modifiedAt,
		&start, &end, &artifacts, &j.Version); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		src string
		dst any
	}{{spec, &j.Spec}, {createdBy, &j.CreatedBy}, {modifiedBy, &j.ModifiedBy}, {artifacts, &j.Artifacts}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return nil, fmt.Errorf("decode job %s: %w", j.Name, err)
		}
	}
	if jobErr.Valid {
		j.Error = &chub.ErrorDetail{}
		if err := json.Unmarshal([]byte(jobErr.String), j.Error); err != nil {
			return nil, fmt.Errorf("decode job %s: %w", j.Name, err)
		}
	}
	if exit.Valid {
		code := int(exit.Int64)
		j.ExitCode = &code
	}
	j.CreatedAt, j.ModifiedAt = parseTime(createdAt), parseTime(modifiedAt)
	if start.Valid {
		t := parseTime(start.String)
		j.StartTime = &t
	}
	if end.Valid {
		t := parseTime(end.String)
		j.EndTime = &t
	}
	return &j, nil
}

// jobValues are the encoded columns of a job.
type jobValues struct {
	spec, createdBy, modifiedBy, artifacts string
	jobErr, exit, start, end               any
}

func encodeJob(j *chub.Job) jobValues {
	enc := func(x any) string {
		b, _ := json.Marshal(x)
		return string(b)
	}
	v := jobValues{spec: enc(j.Spec), createdBy: enc(j.CreatedBy), modifiedBy: enc(j.ModifiedBy), artifacts: enc(j.Artifacts)}
	if j.Error != nil {
		v.jobErr = enc(j.Error)
	}
	if j.ExitCode != nil {
		v.exit = *j.ExitCode
	}
	if j.StartTime != nil {
		v.start = fmtTime(*j.StartTime)
	}
	if j.EndTime != nil {
		v.end = fmtTime(*j.EndTime)
	}
	return v
}

// CreateJob inserts a job: it assigns Seq (increasing with every
// submission, never reused) and sets Version to 1. A name taken in the
// workspace, whatever its case, is a KindConflict error.
func (d *DB) CreateJob(ctx context.Context, j *chub.Job) error {
	if j.ID == "" {
		return fmt.Errorf("create job %s: the job has no id", j.Name)
	}
	v := encodeJob(j)
	var seq int64
	err := d.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO jobs (id, workspace_id, name, compute_id, status, spec, message, error, exit_code, archived,
			created_by, created_at, modified_by, modified_at, start_time, end_time, artifacts, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) RETURNING seq`,
			j.ID, j.WorkspaceID, j.Name, j.ComputeID, j.Status, v.spec, j.Message, v.jobErr, v.exit, j.Archived,
			v.createdBy, fmtTime(j.CreatedAt), v.modifiedBy, fmtTime(j.ModifiedAt), v.start, v.end, v.artifacts).Scan(&seq)
		if isUnique(err) && strings.Contains(err.Error(), "jobs.id") {
			return chub.Conflict("JobIdTaken", "id", "a job with id %s already exists", j.ID)
		}
		if isUnique(err) {
			return chub.Conflict("JobNameNotAvailable", "name",
				"a job named %q already exists in workspace %q (job names are unique in a workspace, whatever their case); pick another name", j.Name, j.Scope.Workspace)
		}
		if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
			return chub.NotFound("workspaceName", "workspace %q (id %s) was not found", j.Scope.Workspace, j.WorkspaceID)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.Name, err)
	}
	j.Seq, j.Version = seq, 1
	return nil
}

func jobNotFound(s chub.WorkspaceScope, name string) error {
	return chub.Errorf(chub.KindNotFound, "UserError", "name", "job %q was not found in workspace %q", name, s.Workspace)
}

// GetJob finds a job by workspace and name (case-insensitive).
func (d *DB) GetJob(ctx context.Context, s chub.WorkspaceScope, name string) (*chub.Job, error) {
	j, err := scanJob(d.db.QueryRowContext(ctx, `SELECT `+jobCols+jobFrom+
		`WHERE w.subscription = ? AND w.resource_group = ? AND w.name = ? AND j.name = ?`, s.Subscription, s.ResourceGroup, s.Workspace, name))
	if err == sql.ErrNoRows {
		return nil, jobNotFound(s, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", name, err)
	}
	return j, nil
}

// GetJobByID finds a job by its internal id.
func (d *DB) GetJobByID(ctx context.Context, id string) (*chub.Job, error) {
	j, err := scanJob(d.db.QueryRowContext(ctx, `SELECT `+jobCols+jobFrom+`WHERE j.id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, chub.Errorf(chub.KindNotFound, "UserError", "id", "job %s was not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

// UpdateJob writes every mutable field of j (all but its id, workspace,
// name, compute, Seq and creation) if nobody wrote it since it was read,
// and advances j.Version; a stale write is a KindConflict error (re-read
// and retry).
func (d *DB) UpdateJob(ctx context.Context, j *chub.Job) error {
	v := encodeJob(j)
	err := d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, spec = ?, message = ?, error = ?, exit_code = ?, archived = ?,
			modified_by = ?, modified_at = ?, start_time = ?, end_time = ?, artifacts = ?, version = version + 1
			WHERE id = ? AND version = ?`,
			j.Status, v.spec, j.Message, v.jobErr, v.exit, j.Archived, v.modifiedBy, fmtTime(j.ModifiedAt), v.start, v.end, v.artifacts,
			j.ID, j.Version)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE id = ?`, j.ID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return jobNotFound(j.Scope, j.Name)
		}
		return chub.Conflict("ConcurrentUpdate", "name", "job %q was changed by another request; re-read it and retry", j.Name)
	})
	if err != nil {
		return fmt.Errorf("update job %s: %w", j.Name, err)
	}
	j.Version++
	return nil
}

// statusList encodes statuses as a JSON array for json_each.
func statusList(statuses []chub.JobStatus) string {
	if statuses == nil {
		statuses = []chub.JobStatus{}
	}
	b, _ := json.Marshal(statuses)
	return string(b)
}

// ListJobs lists the jobs f selects in Seq order, oldest submission
// first (the API reverses a page for Azure's newest-first lists). View ""
// is ActiveOnly: archived jobs are left out, whatever their status, so a
// caller that wants every unfinished job (the controller) asks for View
// All. Tag "name" selects jobs with that tag (the name compared
// case-insensitively), "name=value" those whose tag has that value.
func (d *DB) ListJobs(ctx context.Context, f chub.JobFilter) ([]*chub.Job, error) {
	var where []string
	var args []any
	if f.Workspace != nil {
		where = append(where, `w.subscription = ? AND w.resource_group = ? AND w.name = ?`)
		args = append(args, f.Workspace.Subscription, f.Workspace.ResourceGroup, f.Workspace.Workspace)
	}
	if f.ComputeID != "" {
		where = append(where, `j.compute_id = ?`)
		args = append(args, f.ComputeID)
	}
	if len(f.Statuses) > 0 {
		where = append(where, `j.status IN (SELECT value FROM json_each(?))`)
		args = append(args, statusList(f.Statuses))
	}
	switch f.View {
	case "", chub.JobViewActive:
		where = append(where, `j.archived = 0`)
	case chub.JobViewArchived:
		where = append(where, `j.archived = 1`)
	case chub.JobViewAll:
	default:
		return nil, chub.Invalid("InvalidListViewType", "listViewType", "listViewType %q is not one of ActiveOnly, ArchivedOnly, All", f.View)
	}
	if f.Tag != "" {
		name, value, hasValue := strings.Cut(f.Tag, "=")
		if hasValue {
			where = append(where, `EXISTS (SELECT 1 FROM json_each(j.spec, '$.tags') t WHERE t.key = ? COLLATE NOCASE AND t.value = ?)`)
			args = append(args, name, value)
		} else {
			where = append(where, `EXISTS (SELECT 1 FROM json_each(j.spec, '$.tags') t WHERE t.key = ? COLLATE NOCASE)`)
			args = append(args, name)
		}
	}
	q := `SELECT ` + jobCols + jobFrom
	if len(where) > 0 {
		q += `WHERE ` + strings.Join(where, ` AND `)
	}
	limit := f.Page.Limit
	if limit <= 0 {
		limit = -1
	}
	q += ` ORDER BY j.seq LIMIT ? OFFSET ?`
	args = append(args, limit, max(f.Page.Skip, 0))
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []*chub.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// CountJobs counts, for each compute id that has any, the jobs in the
// given statuses, archived ones included (an archived job may still be
// canceling). Instances without such jobs are absent from the map.
func (d *DB) CountJobs(ctx context.Context, statuses []chub.JobStatus) (map[string]int, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT compute_id, count(*) FROM jobs WHERE status IN (SELECT value FROM json_each(?)) GROUP BY compute_id`,
		statusList(statuses))
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	return out, nil
}
