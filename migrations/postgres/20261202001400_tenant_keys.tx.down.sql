-- Back to keys of the id (or digest) alone. It fails if two partners came
-- to share an id meanwhile, which random ids do not.
DROP INDEX invitations_id_idx;
--bun:split
ALTER TABLE invitations DROP CONSTRAINT invitations_token_hash_key;
--bun:split
ALTER TABLE invitations ADD CONSTRAINT invitations_token_hash_key UNIQUE (token_hash);
--bun:split
ALTER TABLE invitations DROP CONSTRAINT invitations_pkey;
--bun:split
ALTER TABLE invitations ADD PRIMARY KEY (id);
--bun:split
ALTER TABLE sessions DROP CONSTRAINT sessions_pkey;
--bun:split
ALTER TABLE sessions ADD PRIMARY KEY (id_hash);
--bun:split
DROP INDEX members_id_idx;
--bun:split
ALTER TABLE members DROP CONSTRAINT members_pkey;
--bun:split
ALTER TABLE members ADD PRIMARY KEY (id);
--bun:split
DROP INDEX access_chunks_id_idx;
--bun:split
ALTER TABLE access_chunks DROP CONSTRAINT access_chunks_pkey;
--bun:split
ALTER TABLE access_chunks ADD PRIMARY KEY (id);
--bun:split
ALTER TABLE oauth_tokens DROP CONSTRAINT oauth_tokens_pkey;
--bun:split
ALTER TABLE oauth_tokens ADD PRIMARY KEY (token_hash);
--bun:split
ALTER TABLE oauth_codes DROP CONSTRAINT oauth_codes_pkey;
--bun:split
ALTER TABLE oauth_codes ADD PRIMARY KEY (code_hash);
--bun:split
ALTER TABLE oauth_codes DROP COLUMN environment;
--bun:split
ALTER TABLE oauth_codes DROP COLUMN partner_id;
--bun:split
DROP INDEX oauth_grants_id_idx;
--bun:split
ALTER TABLE oauth_grants DROP CONSTRAINT oauth_grants_pkey;
--bun:split
ALTER TABLE oauth_grants ADD PRIMARY KEY (id);
--bun:split
DROP INDEX oauth_clients_id_idx;
--bun:split
ALTER TABLE oauth_clients DROP CONSTRAINT oauth_clients_pkey;
--bun:split
ALTER TABLE oauth_clients ADD PRIMARY KEY (id);
--bun:split
DROP INDEX service_credentials_id_idx;
--bun:split
ALTER TABLE service_credentials DROP CONSTRAINT service_credentials_pkey;
--bun:split
ALTER TABLE service_credentials ADD PRIMARY KEY (id);
--bun:split
ALTER TABLE requests DROP CONSTRAINT requests_pkey;
--bun:split
ALTER TABLE requests ADD PRIMARY KEY (id);
--bun:split
ALTER TABLE addresses DROP CONSTRAINT addresses_pkey;
--bun:split
ALTER TABLE addresses ADD PRIMARY KEY (id);
--bun:split
ALTER TABLE funding DROP CONSTRAINT funding_pkey;
--bun:split
ALTER TABLE funding ADD PRIMARY KEY (id);
--bun:split
DROP INDEX audit_events_id_idx;
--bun:split
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey;
--bun:split
ALTER TABLE audit_events ADD PRIMARY KEY (id);
--bun:split
DROP INDEX api_keys_id_idx;
--bun:split
ALTER TABLE api_keys DROP CONSTRAINT api_keys_key_hash_key;
--bun:split
ALTER TABLE api_keys ADD CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash);
--bun:split
ALTER TABLE api_keys DROP CONSTRAINT api_keys_pkey;
--bun:split
ALTER TABLE api_keys ADD PRIMARY KEY (id);
