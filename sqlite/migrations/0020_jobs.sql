-- Jobs, their code and environment versions (assets), and uploaded blobs.
-- Everything here belongs to a workspace and goes with it when the
-- workspace is deleted (a workspace can only be deleted once it has no
-- computes, so none of its jobs can still be running).

-- seq is the submission order: AUTOINCREMENT never reuses a value, even
-- after rows are deleted. compute_id is not a foreign key: a job outlives
-- the instance it ran on.
CREATE TABLE jobs (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT NOT NULL UNIQUE,
	workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
	name         TEXT NOT NULL COLLATE NOCASE,
	compute_id   TEXT NOT NULL,
	status       TEXT NOT NULL,
	spec         TEXT NOT NULL,
	message      TEXT NOT NULL DEFAULT '',
	error        TEXT,
	exit_code    INTEGER,
	archived     INTEGER NOT NULL DEFAULT 0,
	created_by   TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	modified_by  TEXT NOT NULL,
	modified_at  TEXT NOT NULL,
	start_time   TEXT,
	end_time     TEXT,
	artifacts    TEXT NOT NULL DEFAULT '{}',
	version      INTEGER NOT NULL,
	UNIQUE (workspace_id, name)
);
CREATE INDEX jobs_workspace ON jobs(workspace_id, archived, seq);
CREATE INDEX jobs_compute_status ON jobs(compute_id, status, seq);
CREATE INDEX jobs_status ON jobs(status, compute_id);

-- Versions of codes and environments; kind is 'codes' or 'environments'.
CREATE TABLE assets (
	id           TEXT PRIMARY KEY,
	kind         TEXT NOT NULL,
	workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
	name         TEXT NOT NULL COLLATE NOCASE,
	version      TEXT NOT NULL COLLATE NOCASE,
	description  TEXT NOT NULL DEFAULT '',
	tags         TEXT NOT NULL DEFAULT '{}',
	properties   TEXT NOT NULL DEFAULT '{}',
	code_uri     TEXT NOT NULL DEFAULT '',
	image        TEXT NOT NULL DEFAULT '',
	archived     INTEGER NOT NULL DEFAULT 0,
	created_by   TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	modified_at  TEXT NOT NULL,
	UNIQUE (kind, workspace_id, name, version)
);
CREATE INDEX assets_list ON assets(workspace_id, kind, name, created_at);

-- Uploads: pending (token_hash set, no content yet) until the content
-- arrives, then ready and immutable.
CREATE TABLE blobs (
	id           TEXT PRIMARY KEY,
	workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
	token_hash   TEXT NOT NULL DEFAULT '',
	ready        INTEGER NOT NULL DEFAULT 0,
	size         INTEGER NOT NULL DEFAULT 0,
	sha256       TEXT NOT NULL DEFAULT '',
	created_by   TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	expires_at   TEXT
);
CREATE INDEX blobs_workspace ON blobs(workspace_id);
