DROP INDEX oauth_clients_secret_hash_idx;
--bun:split
DROP INDEX service_credentials_secret_hash_idx;
--bun:split
ALTER TABLE service_credentials DROP COLUMN secret_hash;
