-- Role-based access control, the audit log, quotas and passwords.
CREATE TABLE role_definitions (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
	body       TEXT NOT NULL,
	created_at TEXT NOT NULL
);

CREATE TABLE role_assignments (
	id                 TEXT PRIMARY KEY,
	principal_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	role_definition_id TEXT NOT NULL COLLATE NOCASE,
	scope              TEXT NOT NULL COLLATE NOCASE,
	created_at         TEXT NOT NULL,
	created_by         TEXT NOT NULL,
	UNIQUE (principal_id, role_definition_id, scope)
);
CREATE INDEX role_assignments_principal ON role_assignments(principal_id);

CREATE TABLE audit_log (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	time           TEXT NOT NULL,
	principal_id   TEXT NOT NULL,
	principal_name TEXT NOT NULL,
	action         TEXT NOT NULL,
	resource       TEXT NOT NULL,
	result         TEXT NOT NULL,
	status         INTEGER NOT NULL,
	client_address TEXT NOT NULL,
	correlation_id TEXT NOT NULL,
	detail         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_time ON audit_log(time);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Dedicated-core limits per VM family and region; family '' is the regional total.
CREATE TABLE quotas (
	location   TEXT NOT NULL COLLATE NOCASE,
	family     TEXT NOT NULL COLLATE NOCASE,
	core_limit INTEGER NOT NULL,
	PRIMARY KEY (location, family)
);

-- The cores held: one row per holder (an instance is a one-node cluster;
-- training clusters will hold rows here too).
CREATE TABLE quota_ledger (
	holder_id TEXT PRIMARY KEY,
	location  TEXT NOT NULL COLLATE NOCASE,
	family    TEXT NOT NULL COLLATE NOCASE,
	cores     INTEGER NOT NULL
);
CREATE INDEX quota_ledger_family ON quota_ledger(location, family);

ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN revoked_at TEXT;
