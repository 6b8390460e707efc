ALTER TABLE requests DROP COLUMN credential_id;
--bun:split
DROP TABLE credential_limit_usage;
--bun:split
DROP TABLE credential_limits;
