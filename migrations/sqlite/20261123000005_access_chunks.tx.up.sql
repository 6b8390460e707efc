-- The access log, one row per credential per flush: every authenticated
-- request is an entry of a chunk rather than a row of its own, because a row
-- per request cost the database more CPU than the request itself.
CREATE TABLE access_chunks (
    id            TEXT PRIMARY KEY, -- the greatest entry id: chunks sort like their entries
    partner_id    TEXT NOT NULL,
    environment   TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    actor         TEXT NOT NULL,
    min_id        TEXT NOT NULL,    -- the least entry id
    first_at      TIMESTAMP NOT NULL,
    last_at       TIMESTAMP NOT NULL,
    entries       INTEGER NOT NULL,
    data          BLOB NOT NULL    -- JSON lines (audit.AccessEntry), S2-compressed
);
--bun:split
CREATE INDEX access_chunks_tenant_idx ON access_chunks (partner_id, environment, id);
--bun:split
CREATE INDEX access_chunks_credential_idx ON access_chunks (partner_id, environment, credential_id, id);
