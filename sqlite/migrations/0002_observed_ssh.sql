-- What the server learned from inside running instances (applications
-- available, last activity, address), and each instance's SSH port.
ALTER TABLE computes ADD COLUMN observed TEXT NOT NULL DEFAULT '{}';
ALTER TABLE computes ADD COLUMN ssh_port INTEGER;
CREATE UNIQUE INDEX computes_ssh_port ON computes(ssh_port) WHERE ssh_port IS NOT NULL;
