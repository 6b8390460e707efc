CREATE TABLE balances (
    partner_id  TEXT NOT NULL,
    environment TEXT NOT NULL,
    currency    TEXT NOT NULL,
    available   BIGINT NOT NULL DEFAULT 0 CHECK (available >= 0),
    pending     BIGINT NOT NULL DEFAULT 0 CHECK (pending >= 0),
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (partner_id, environment, currency)
);
--bun:split
CREATE TABLE funding (
    id           TEXT PRIMARY KEY,
    partner_id   TEXT NOT NULL,
    environment  TEXT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,
    reference    TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ,
    failed_at    TIMESTAMPTZ
);
--bun:split
CREATE INDEX funding_tenant_idx ON funding (partner_id, environment, id);
--bun:split
CREATE TABLE addresses (
    id          TEXT PRIMARY KEY,
    partner_id  TEXT NOT NULL,
    environment TEXT NOT NULL,
    network     TEXT NOT NULL,
    address     TEXT NOT NULL,
    address_key TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    archived_at TIMESTAMPTZ
);
--bun:split
CREATE INDEX addresses_tenant_idx ON addresses (partner_id, environment, id);
--bun:split
CREATE UNIQUE INDEX addresses_active_unique ON addresses (partner_id, environment, network, address_key) WHERE status = 'active';
--bun:split
CREATE TABLE requests (
    id           TEXT PRIMARY KEY,
    partner_id   TEXT NOT NULL,
    environment  TEXT NOT NULL,
    type         TEXT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    address_id   TEXT NOT NULL,
    status       TEXT NOT NULL,
    metadata     TEXT NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ,
    failed_at    TIMESTAMPTZ,
    cancelled_at TIMESTAMPTZ
);
--bun:split
CREATE INDEX requests_tenant_idx ON requests (partner_id, environment, id);
--bun:split
CREATE TABLE idempotency_keys (
    partner_id      TEXT NOT NULL,
    environment     TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    state           TEXT NOT NULL,
    response_status INTEGER NOT NULL DEFAULT 0,
    response_body   TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (partner_id, environment, key)
);
--bun:split
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);
