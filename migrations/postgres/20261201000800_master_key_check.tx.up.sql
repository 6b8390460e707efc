-- Which master key this database's sealed secrets are under: an HMAC of a
-- fixed label under the key (never the key), so that a start with another
-- key is refused instead of failing every HS256 token. One row, id 'master'.
CREATE TABLE master_key_checks (
    id          TEXT PRIMARY KEY,
    check_value TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
