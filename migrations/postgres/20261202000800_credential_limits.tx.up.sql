CREATE TABLE credential_limits (
    partner_id             TEXT NOT NULL,
    environment            TEXT NOT NULL,
    credential_id          TEXT NOT NULL,
    currency               TEXT NOT NULL,
    max_withdrawal_amount  BIGINT CHECK (max_withdrawal_amount >= 0),
    daily_withdrawal_total BIGINT CHECK (daily_withdrawal_total >= 0),
    PRIMARY KEY (partner_id, environment, credential_id, currency)
);
--bun:split
CREATE TABLE credential_limit_usage (
    partner_id    TEXT NOT NULL,
    environment   TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    day           TEXT NOT NULL,
    currency      TEXT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (partner_id, environment, credential_id, day, currency)
);
--bun:split
ALTER TABLE requests ADD COLUMN credential_id TEXT NOT NULL DEFAULT '';
