DROP TABLE IF EXISTS cache_invalidations;
--bun:split
DROP TABLE IF EXISTS audit_events;
--bun:split
DROP TABLE IF EXISTS api_keys;
--bun:split
DROP TABLE IF EXISTS partners;
