ALTER TABLE service_credentials ADD COLUMN secret_hash TEXT;
--bun:split
CREATE INDEX service_credentials_secret_hash_idx ON service_credentials (secret_hash);
--bun:split
CREATE INDEX oauth_clients_secret_hash_idx ON oauth_clients (secret_hash);
