CREATE TABLE service_credentials (
    id          TEXT PRIMARY KEY,
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
    revoked_at  TIMESTAMP
);
--bun:split
CREATE INDEX service_credentials_tenant_idx ON service_credentials (partner_id, environment, id);
--bun:split
CREATE TABLE platform_services (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    algorithm   TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    permissions TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
