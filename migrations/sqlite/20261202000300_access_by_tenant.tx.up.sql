-- The access log, one chunk per tenant per flush (and bucket of about 33 s):
-- a chunk per credential made a row per request once many keys were in use.
-- Each entry now names its credential; access_credentials says in which
-- buckets a credential has entries, so that listing by credential still
-- reads only the chunks of those buckets.
ALTER TABLE access_chunks ADD COLUMN bucket TEXT NOT NULL DEFAULT '';
--bun:split
-- A bucket is the first 7 base32 digits of an id after "evt_".
UPDATE access_chunks SET bucket = substr(id, 5, 7);
--bun:split
CREATE TABLE access_credentials (
    partner_id    TEXT NOT NULL,
    environment   TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    bucket        TEXT NOT NULL,
    PRIMARY KEY (partner_id, environment, credential_id, bucket)
) WITHOUT ROWID;
--bun:split
INSERT INTO access_credentials (partner_id, environment, credential_id, bucket)
SELECT DISTINCT partner_id, environment, credential_id, bucket FROM access_chunks;
--bun:split
-- For pruning old buckets (NEXUS_AUDIT_RETENTION).
CREATE INDEX access_credentials_bucket_idx ON access_credentials (bucket);
--bun:split
CREATE INDEX access_chunks_bucket_idx ON access_chunks (partner_id, environment, bucket, id);
--bun:split
DROP INDEX access_chunks_credential_idx;
