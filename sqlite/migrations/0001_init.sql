CREATE TABLE users (
	id           TEXT PRIMARY KEY,
	tenant_id    TEXT NOT NULL,
	name         TEXT NOT NULL UNIQUE COLLATE NOCASE,
	display_name TEXT NOT NULL,
	admin        INTEGER NOT NULL DEFAULT 0,
	created_at   TEXT NOT NULL
);

CREATE TABLE tokens (
	id         TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	hash       TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	expires_at TEXT
);

CREATE TABLE workspaces (
	id             TEXT PRIMARY KEY,
	subscription   TEXT NOT NULL COLLATE NOCASE,
	resource_group TEXT NOT NULL COLLATE NOCASE,
	name           TEXT NOT NULL COLLATE NOCASE,
	location       TEXT NOT NULL,
	description    TEXT NOT NULL DEFAULT '',
	friendly_name  TEXT NOT NULL DEFAULT '',
	tags           TEXT NOT NULL DEFAULT '{}',
	created_by     TEXT NOT NULL DEFAULT '{}',
	created_at     TEXT NOT NULL,
	modified_at    TEXT NOT NULL,
	UNIQUE (subscription, resource_group, name)
);

-- Compute names are unique across the region, whatever the workspace.
CREATE TABLE computes (
	id               TEXT PRIMARY KEY,
	workspace_id     TEXT NOT NULL REFERENCES workspaces(id),
	name             TEXT NOT NULL UNIQUE COLLATE NOCASE,
	location         TEXT NOT NULL,
	description      TEXT NOT NULL DEFAULT '',
	tags             TEXT NOT NULL DEFAULT '{}',
	settings         TEXT NOT NULL,
	created_by       TEXT NOT NULL,
	created_at       TEXT NOT NULL,
	modified_by      TEXT NOT NULL,
	modified_at      TEXT NOT NULL,
	desired          TEXT NOT NULL,
	restart_pending  INTEGER NOT NULL DEFAULT 0,
	active_operation TEXT NOT NULL DEFAULT '',
	state            TEXT NOT NULL,
	last_operation   TEXT,
	errors           TEXT NOT NULL DEFAULT '[]',
	runtime_state    BLOB,
	version          INTEGER NOT NULL
);
CREATE INDEX computes_workspace ON computes(workspace_id, created_at, name);

-- Operations outlive their compute so that status URLs keep answering.
CREATE TABLE operations (
	id           TEXT PRIMARY KEY,
	compute_id   TEXT NOT NULL,
	resource_id  TEXT NOT NULL,
	location     TEXT NOT NULL,
	name         TEXT NOT NULL,
	trigger_by   TEXT NOT NULL,
	status       TEXT NOT NULL,
	error        TEXT,
	start_time   TEXT NOT NULL,
	end_time     TEXT,
	requested_by TEXT NOT NULL
);
CREATE INDEX operations_compute ON operations(compute_id, start_time);
