-- Quotas per subscription and region, as in Azure: the limits and the
-- ledger gain a subscription. The region-wide limits set before now apply
-- to every subscription that has a workspace, and to the default one; the
-- cores held are charged to the holder's subscription (the default one
-- when the holder is not an instance).
CREATE TABLE quotas_by_subscription (
	subscription TEXT NOT NULL COLLATE NOCASE,
	location     TEXT NOT NULL COLLATE NOCASE,
	family       TEXT NOT NULL COLLATE NOCASE,
	core_limit   INTEGER NOT NULL,
	PRIMARY KEY (subscription, location, family)
);
INSERT OR IGNORE INTO quotas_by_subscription (subscription, location, family, core_limit)
	SELECT s.subscription, q.location, q.family, q.core_limit FROM quotas q,
		(SELECT subscription FROM workspaces UNION SELECT '00000000-0000-0000-0000-000000000000') s;
DROP TABLE quotas;
ALTER TABLE quotas_by_subscription RENAME TO quotas;

ALTER TABLE quota_ledger ADD COLUMN subscription TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000' COLLATE NOCASE;
UPDATE quota_ledger SET subscription = (SELECT w.subscription FROM computes c JOIN workspaces w ON w.id = c.workspace_id WHERE c.id = quota_ledger.holder_id)
	WHERE holder_id IN (SELECT id FROM computes);
DROP INDEX quota_ledger_family;
CREATE INDEX quota_ledger_family ON quota_ledger(subscription, location, family);
