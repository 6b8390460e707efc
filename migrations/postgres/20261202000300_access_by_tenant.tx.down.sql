-- Chunks written since hold many credentials and show none in their row.
CREATE INDEX access_chunks_credential_idx ON access_chunks (partner_id, environment, credential_id, id);
--bun:split
DROP INDEX access_chunks_bucket_idx;
--bun:split
DROP INDEX access_credentials_bucket_idx;
--bun:split
DROP TABLE access_credentials;
--bun:split
ALTER TABLE access_chunks DROP COLUMN bucket;
