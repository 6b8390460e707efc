-- Requests and errors per credential and hour, added to as the access log
-- flushes: usage is read from here, never by scanning the access log.
CREATE TABLE usage_hourly (
    partner_id    TEXT NOT NULL,
    environment   TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    hour          TIMESTAMP NOT NULL,
    requests      BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    PRIMARY KEY (partner_id, environment, credential_id, hour)
);
--bun:split
CREATE INDEX usage_hourly_hour ON usage_hourly (partner_id, environment, hour);
