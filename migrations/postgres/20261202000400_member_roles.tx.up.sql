-- Members existing before roles were the people an operator created for a
-- partner, with every power a member had: they become owners.
ALTER TABLE members ADD COLUMN role TEXT NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'admin', 'developer', 'viewer'));
--bun:split
ALTER TABLE sessions ADD COLUMN last_seen_at TIMESTAMPTZ;
