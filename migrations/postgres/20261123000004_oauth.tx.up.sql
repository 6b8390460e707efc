CREATE TABLE members (
    id            TEXT PRIMARY KEY,
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
--bun:split
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    member_id  TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
--bun:split
CREATE TABLE oauth_clients (
    id            TEXT PRIMARY KEY,
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    environment   TEXT NOT NULL,
    name          TEXT NOT NULL,
    type          TEXT NOT NULL,
    secret_hash   TEXT,
    redirect_uris TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    deleted_at    TIMESTAMPTZ
);
--bun:split
CREATE INDEX oauth_clients_tenant_idx ON oauth_clients (partner_id, environment, id);
--bun:split
CREATE TABLE oauth_grants (
    id          TEXT PRIMARY KEY,
    partner_id  TEXT NOT NULL,
    environment TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
--bun:split
CREATE INDEX oauth_grants_tenant_idx ON oauth_grants (partner_id, environment, id);
--bun:split
CREATE TABLE oauth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    grant_id       TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL DEFAULT '',
    scopes         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ
);
--bun:split
CREATE TABLE oauth_tokens (
    token_hash  TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    grant_id    TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    partner_id  TEXT NOT NULL,
    environment TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    code_hash   TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
--bun:split
CREATE INDEX oauth_tokens_grant_idx ON oauth_tokens (grant_id);
