ALTER TABLE sessions DROP COLUMN last_seen_at;
--bun:split
ALTER TABLE members DROP COLUMN role;
