CREATE TABLE partners (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    rate_limit  INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
--bun:split
CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners (id),
    environment     TEXT NOT NULL,
    type            TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    prefix          TEXT NOT NULL,
    last4           TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    scopes          TEXT NOT NULL,
    status          TEXT NOT NULL,
    allowed_ips     TEXT NOT NULL DEFAULT '[]',
    allowed_origins TEXT NOT NULL DEFAULT '[]',
    expires_at      TIMESTAMP,
    last_used_at    TIMESTAMP,
    replaced_by     TEXT,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX api_keys_tenant_idx ON api_keys (partner_id, environment, id);
--bun:split
CREATE TABLE audit_events (
    id            TEXT PRIMARY KEY,
    partner_id    TEXT NOT NULL,
    environment   TEXT NOT NULL,
    type          TEXT NOT NULL,
    object_id     TEXT NOT NULL DEFAULT '',
    credential_id TEXT NOT NULL DEFAULT '',
    actor         TEXT NOT NULL DEFAULT '',
    ip            TEXT NOT NULL DEFAULT '',
    request_id    TEXT NOT NULL DEFAULT '',
    method        TEXT NOT NULL DEFAULT '',
    path          TEXT NOT NULL DEFAULT '',
    status        INTEGER NOT NULL DEFAULT 0,
    data          TEXT NOT NULL DEFAULT '{}',
    created_at    TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX audit_events_tenant_idx ON audit_events (partner_id, environment, id);
--bun:split
CREATE TABLE cache_invalidations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    topic      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
