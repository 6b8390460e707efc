-- Every tenant table's keys include partner_id, as a PostgreSQL sharded by
-- tenant (Citus) requires; SQLite keeps the same keys so that both dialects
-- refuse the same rows. The PostgreSQL migration says why each key is as it
-- is. SQLite cannot change a table's keys: each table is rebuilt (create,
-- copy, drop, rename) and its indexes are created again. No foreign key
-- points at a rebuilt table, so dropping the old one orphans nothing.
CREATE TABLE api_keys_new (
    id              TEXT NOT NULL,
    partner_id      TEXT NOT NULL REFERENCES partners (id),
    environment     TEXT NOT NULL,
    type            TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    prefix          TEXT NOT NULL,
    last4           TEXT NOT NULL,
    key_hash        TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    status          TEXT NOT NULL,
    allowed_ips     TEXT NOT NULL DEFAULT '[]',
    allowed_origins TEXT NOT NULL DEFAULT '[]',
    expires_at      TIMESTAMP,
    last_used_at    TIMESTAMP,
    replaced_by     TEXT,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    expiry_warned_at TIMESTAMP,
    PRIMARY KEY (partner_id, id),
    UNIQUE (key_hash, partner_id)
);
--bun:split
INSERT INTO api_keys_new (id, partner_id, environment, type, name, prefix, last4, key_hash, scopes, status, allowed_ips, allowed_origins, expires_at, last_used_at, replaced_by, created_at, updated_at, expiry_warned_at)
SELECT id, partner_id, environment, type, name, prefix, last4, key_hash, scopes, status, allowed_ips, allowed_origins, expires_at, last_used_at, replaced_by, created_at, updated_at, expiry_warned_at FROM api_keys;
--bun:split
DROP TABLE api_keys;
--bun:split
ALTER TABLE api_keys_new RENAME TO api_keys;
--bun:split
CREATE INDEX api_keys_tenant_idx ON api_keys (partner_id, environment, id);
--bun:split
CREATE INDEX api_keys_status_idx ON api_keys (partner_id, environment, status, id);
--bun:split
CREATE INDEX api_keys_id_idx ON api_keys (id);
--bun:split
CREATE TABLE audit_events_new (
    id            TEXT NOT NULL,
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
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (partner_id, id)
);
--bun:split
INSERT INTO audit_events_new (id, partner_id, environment, type, object_id, credential_id, actor, ip, request_id, method, path, status, data, created_at)
SELECT id, partner_id, environment, type, object_id, credential_id, actor, ip, request_id, method, path, status, data, created_at FROM audit_events;
--bun:split
DROP TABLE audit_events;
--bun:split
ALTER TABLE audit_events_new RENAME TO audit_events;
--bun:split
CREATE INDEX audit_events_tenant_idx ON audit_events (partner_id, environment, id);
--bun:split
CREATE INDEX audit_events_type_idx ON audit_events (partner_id, environment, type, id);
--bun:split
CREATE INDEX audit_events_credential_idx ON audit_events (partner_id, environment, credential_id, id);
--bun:split
CREATE INDEX audit_events_id_idx ON audit_events (id);
--bun:split
CREATE TABLE funding_new (
    id           TEXT NOT NULL,
    partner_id   TEXT NOT NULL,
    environment  TEXT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,
    reference    TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    failed_at    TIMESTAMP,
    PRIMARY KEY (partner_id, id)
);
--bun:split
INSERT INTO funding_new (id, partner_id, environment, amount, currency, status, reference, created_at, updated_at, completed_at, failed_at)
SELECT id, partner_id, environment, amount, currency, status, reference, created_at, updated_at, completed_at, failed_at FROM funding;
--bun:split
DROP TABLE funding;
--bun:split
ALTER TABLE funding_new RENAME TO funding;
--bun:split
CREATE INDEX funding_tenant_idx ON funding (partner_id, environment, id);
--bun:split
CREATE INDEX funding_status_idx ON funding (partner_id, environment, status, id);
--bun:split
CREATE INDEX funding_currency_idx ON funding (partner_id, environment, currency, id);
--bun:split
CREATE TABLE addresses_new (
    id          TEXT NOT NULL,
    partner_id  TEXT NOT NULL,
    environment TEXT NOT NULL,
    network     TEXT NOT NULL,
    address     TEXT NOT NULL,
    address_key TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    archived_at TIMESTAMP,
    PRIMARY KEY (partner_id, id)
);
--bun:split
INSERT INTO addresses_new (id, partner_id, environment, network, address, address_key, label, status, created_at, updated_at, archived_at)
SELECT id, partner_id, environment, network, address, address_key, label, status, created_at, updated_at, archived_at FROM addresses;
--bun:split
DROP TABLE addresses;
--bun:split
ALTER TABLE addresses_new RENAME TO addresses;
--bun:split
CREATE INDEX addresses_tenant_idx ON addresses (partner_id, environment, id);
--bun:split
CREATE UNIQUE INDEX addresses_active_unique ON addresses (partner_id, environment, network, address_key) WHERE status = 'active';
--bun:split
CREATE INDEX addresses_status_idx ON addresses (partner_id, environment, status, id);
--bun:split
CREATE INDEX addresses_network_idx ON addresses (partner_id, environment, network, id);
--bun:split
CREATE TABLE requests_new (
    id           TEXT NOT NULL,
    partner_id   TEXT NOT NULL,
    environment  TEXT NOT NULL,
    type         TEXT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    address_id   TEXT NOT NULL,
    status       TEXT NOT NULL,
    metadata     TEXT NOT NULL DEFAULT '{}',
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    failed_at    TIMESTAMP,
    cancelled_at TIMESTAMP,
    credential_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (partner_id, id)
);
--bun:split
INSERT INTO requests_new (id, partner_id, environment, type, amount, currency, address_id, status, metadata, created_at, updated_at, completed_at, failed_at, cancelled_at, credential_id)
SELECT id, partner_id, environment, type, amount, currency, address_id, status, metadata, created_at, updated_at, completed_at, failed_at, cancelled_at, credential_id FROM requests;
--bun:split
DROP TABLE requests;
--bun:split
ALTER TABLE requests_new RENAME TO requests;
--bun:split
CREATE INDEX requests_tenant_idx ON requests (partner_id, environment, id);
--bun:split
CREATE INDEX requests_status_idx ON requests (partner_id, environment, status, id);
--bun:split
CREATE INDEX requests_currency_idx ON requests (partner_id, environment, currency, id);
--bun:split
CREATE INDEX requests_address_idx ON requests (partner_id, environment, address_id, id);
--bun:split
CREATE TABLE service_credentials_new (
    id          TEXT NOT NULL,
    partner_id  TEXT NOT NULL REFERENCES partners (id),
    environment TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    algorithm   TEXT NOT NULL,
    secret_enc  TEXT,
    public_key  TEXT,
    scopes      TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    revoked_at  TIMESTAMP,
    secret_hash TEXT,
    PRIMARY KEY (partner_id, id)
);
--bun:split
INSERT INTO service_credentials_new (id, partner_id, environment, name, algorithm, secret_enc, public_key, scopes, status, created_at, updated_at, revoked_at, secret_hash)
SELECT id, partner_id, environment, name, algorithm, secret_enc, public_key, scopes, status, created_at, updated_at, revoked_at, secret_hash FROM service_credentials;
--bun:split
DROP TABLE service_credentials;
--bun:split
ALTER TABLE service_credentials_new RENAME TO service_credentials;
--bun:split
CREATE INDEX service_credentials_tenant_idx ON service_credentials (partner_id, environment, id);
--bun:split
CREATE INDEX service_credentials_secret_hash_idx ON service_credentials (secret_hash);
--bun:split
CREATE INDEX service_credentials_id_idx ON service_credentials (id);
--bun:split
CREATE TABLE oauth_clients_new (
    id            TEXT NOT NULL,
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    environment   TEXT NOT NULL,
    name          TEXT NOT NULL,
    type          TEXT NOT NULL,
    secret_hash   TEXT,
    redirect_uris TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    deleted_at    TIMESTAMP,
    PRIMARY KEY (partner_id, id)
);
--bun:split
INSERT INTO oauth_clients_new (id, partner_id, environment, name, type, secret_hash, redirect_uris, scopes, status, created_at, updated_at, deleted_at)
SELECT id, partner_id, environment, name, type, secret_hash, redirect_uris, scopes, status, created_at, updated_at, deleted_at FROM oauth_clients;
--bun:split
DROP TABLE oauth_clients;
--bun:split
ALTER TABLE oauth_clients_new RENAME TO oauth_clients;
--bun:split
CREATE INDEX oauth_clients_tenant_idx ON oauth_clients (partner_id, environment, id);
--bun:split
CREATE INDEX oauth_clients_secret_hash_idx ON oauth_clients (secret_hash);
--bun:split
CREATE INDEX oauth_clients_id_idx ON oauth_clients (id);
--bun:split
CREATE TABLE oauth_grants_new (
    id          TEXT NOT NULL,
    partner_id  TEXT NOT NULL,
    environment TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    revoked_at  TIMESTAMP,
    PRIMARY KEY (partner_id, id)
);
--bun:split
INSERT INTO oauth_grants_new (id, partner_id, environment, client_id, member_id, scopes, status, created_at, updated_at, revoked_at)
SELECT id, partner_id, environment, client_id, member_id, scopes, status, created_at, updated_at, revoked_at FROM oauth_grants;
--bun:split
DROP TABLE oauth_grants;
--bun:split
ALTER TABLE oauth_grants_new RENAME TO oauth_grants;
--bun:split
CREATE INDEX oauth_grants_tenant_idx ON oauth_grants (partner_id, environment, id);
--bun:split
CREATE INDEX oauth_grants_id_idx ON oauth_grants (id);
--bun:split
-- A code is its grant's: it gains the grant's tenant. A code whose grant is
-- gone could never be exchanged (the exchange loads the grant); it goes.
CREATE TABLE oauth_codes_new (
    code_hash      TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    grant_id       TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL DEFAULT '',
    scopes         TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL,
    used_at        TIMESTAMP,
    partner_id     TEXT NOT NULL,
    environment    TEXT NOT NULL,
    PRIMARY KEY (code_hash, partner_id)
);
--bun:split
INSERT INTO oauth_codes_new (code_hash, client_id, grant_id, redirect_uri, code_challenge, scopes, created_at, expires_at, used_at, partner_id, environment)
SELECT c.code_hash, c.client_id, c.grant_id, c.redirect_uri, c.code_challenge, c.scopes, c.created_at, c.expires_at, c.used_at, g.partner_id, g.environment
FROM oauth_codes c JOIN oauth_grants g ON g.id = c.grant_id;
--bun:split
DROP TABLE oauth_codes;
--bun:split
ALTER TABLE oauth_codes_new RENAME TO oauth_codes;
--bun:split
CREATE TABLE oauth_tokens_new (
    token_hash  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    grant_id    TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    partner_id  TEXT NOT NULL,
    environment TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    code_hash   TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP,
    revoked_at  TIMESTAMP,
    PRIMARY KEY (token_hash, partner_id)
);
--bun:split
INSERT INTO oauth_tokens_new (token_hash, kind, grant_id, client_id, partner_id, environment, scopes, code_hash, created_at, expires_at, used_at, revoked_at)
SELECT token_hash, kind, grant_id, client_id, partner_id, environment, scopes, code_hash, created_at, expires_at, used_at, revoked_at FROM oauth_tokens;
--bun:split
DROP TABLE oauth_tokens;
--bun:split
ALTER TABLE oauth_tokens_new RENAME TO oauth_tokens;
--bun:split
CREATE INDEX oauth_tokens_grant_idx ON oauth_tokens (grant_id);
--bun:split
CREATE TABLE access_chunks_new (
    id            TEXT NOT NULL,    -- the greatest entry id: chunks sort like their entries
    partner_id    TEXT NOT NULL,
    environment   TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    actor         TEXT NOT NULL,
    min_id        TEXT NOT NULL,    -- the least entry id
    first_at      TIMESTAMP NOT NULL,
    last_at       TIMESTAMP NOT NULL,
    entries       INTEGER NOT NULL,
    data          BLOB NOT NULL,    -- JSON lines (audit.AccessEntry), S2-compressed
    bucket        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (partner_id, id)
);
--bun:split
INSERT INTO access_chunks_new (id, partner_id, environment, credential_id, actor, min_id, first_at, last_at, entries, data, bucket)
SELECT id, partner_id, environment, credential_id, actor, min_id, first_at, last_at, entries, data, bucket FROM access_chunks;
--bun:split
DROP TABLE access_chunks;
--bun:split
ALTER TABLE access_chunks_new RENAME TO access_chunks;
--bun:split
CREATE INDEX access_chunks_tenant_idx ON access_chunks (partner_id, environment, id);
--bun:split
CREATE INDEX access_chunks_bucket_idx ON access_chunks (partner_id, environment, bucket, id);
--bun:split
CREATE INDEX access_chunks_id_idx ON access_chunks (id);
--bun:split
-- A member's email stays unique across partners: it is how a member signs
-- in. A sharded deployment would keep it in a reference table (README).
CREATE TABLE members_new (
    id            TEXT NOT NULL,
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    role          TEXT NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    PRIMARY KEY (partner_id, id)
);
--bun:split
INSERT INTO members_new (id, partner_id, email, password_hash, created_at, role)
SELECT id, partner_id, email, password_hash, created_at, role FROM members;
--bun:split
DROP TABLE members;
--bun:split
ALTER TABLE members_new RENAME TO members;
--bun:split
CREATE INDEX members_id_idx ON members (id);
--bun:split
CREATE TABLE sessions_new (
    id_hash      TEXT NOT NULL,
    member_id    TEXT NOT NULL,
    partner_id   TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP,
    PRIMARY KEY (id_hash, partner_id)
);
--bun:split
INSERT INTO sessions_new (id_hash, member_id, partner_id, created_at, expires_at, last_seen_at)
SELECT id_hash, member_id, partner_id, created_at, expires_at, last_seen_at FROM sessions;
--bun:split
DROP TABLE sessions;
--bun:split
ALTER TABLE sessions_new RENAME TO sessions;
--bun:split
CREATE TABLE invitations_new (
    id          TEXT NOT NULL,
    partner_id  TEXT NOT NULL REFERENCES partners (id),
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    token_hash  TEXT NOT NULL,
    invited_by  TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP,
    PRIMARY KEY (partner_id, id),
    UNIQUE (token_hash, partner_id)
);
--bun:split
INSERT INTO invitations_new (id, partner_id, email, role, token_hash, invited_by, created_at, expires_at, accepted_at)
SELECT id, partner_id, email, role, token_hash, invited_by, created_at, expires_at, accepted_at FROM invitations;
--bun:split
DROP TABLE invitations;
--bun:split
ALTER TABLE invitations_new RENAME TO invitations;
--bun:split
CREATE INDEX invitations_partner ON invitations (partner_id, created_at);
--bun:split
CREATE INDEX invitations_id_idx ON invitations (id);
