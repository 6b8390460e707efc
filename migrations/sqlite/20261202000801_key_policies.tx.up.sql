CREATE TABLE key_policies (
    partner_id                          TEXT NOT NULL,
    environment                         TEXT NOT NULL,
    max_key_lifetime_days               INTEGER,
    require_expiry                      BOOLEAN NOT NULL DEFAULT FALSE,
    require_allowed_ips_for_secret_keys BOOLEAN NOT NULL DEFAULT FALSE,
    max_active_keys                     INTEGER,
    expiry_warning_days                 INTEGER,
    updated_at                          TIMESTAMP NOT NULL,
    PRIMARY KEY (partner_id, environment)
);
--bun:split
ALTER TABLE api_keys ADD COLUMN expiry_warned_at TIMESTAMP;
