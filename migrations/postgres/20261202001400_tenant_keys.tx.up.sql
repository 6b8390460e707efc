-- Every tenant table's keys include partner_id, as a PostgreSQL sharded by
-- tenant (Citus) requires of a distributed table's primary and unique keys
-- (see "Sharding by tenant" in the README). Rows are kept as they are.
--
-- Keys of rows found within a tenant lead with partner_id. Where a row is
-- found before its tenant is known, by an id (a kid, an OAuth client id, a
-- grant id, retention's id ranges, batched last-used stamps), the id keeps
-- a plain index, the old primary key's. A secret's digest (key, token,
-- code, session, invitation) leads its key instead, followed by partner_id:
-- the key's own index finds it. The digest of a 256-bit random secret is
-- unique without a constraint saying so.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_pkey;
--bun:split
ALTER TABLE api_keys ADD PRIMARY KEY (partner_id, id);
--bun:split
ALTER TABLE api_keys DROP CONSTRAINT api_keys_key_hash_key;
--bun:split
ALTER TABLE api_keys ADD CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash, partner_id);
--bun:split
CREATE INDEX api_keys_id_idx ON api_keys (id);
--bun:split
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey;
--bun:split
ALTER TABLE audit_events ADD PRIMARY KEY (partner_id, id);
--bun:split
CREATE INDEX audit_events_id_idx ON audit_events (id);
--bun:split
ALTER TABLE funding DROP CONSTRAINT funding_pkey;
--bun:split
ALTER TABLE funding ADD PRIMARY KEY (partner_id, id);
--bun:split
ALTER TABLE addresses DROP CONSTRAINT addresses_pkey;
--bun:split
ALTER TABLE addresses ADD PRIMARY KEY (partner_id, id);
--bun:split
ALTER TABLE requests DROP CONSTRAINT requests_pkey;
--bun:split
ALTER TABLE requests ADD PRIMARY KEY (partner_id, id);
--bun:split
ALTER TABLE service_credentials DROP CONSTRAINT service_credentials_pkey;
--bun:split
ALTER TABLE service_credentials ADD PRIMARY KEY (partner_id, id);
--bun:split
CREATE INDEX service_credentials_id_idx ON service_credentials (id);
--bun:split
ALTER TABLE oauth_clients DROP CONSTRAINT oauth_clients_pkey;
--bun:split
ALTER TABLE oauth_clients ADD PRIMARY KEY (partner_id, id);
--bun:split
CREATE INDEX oauth_clients_id_idx ON oauth_clients (id);
--bun:split
ALTER TABLE oauth_grants DROP CONSTRAINT oauth_grants_pkey;
--bun:split
ALTER TABLE oauth_grants ADD PRIMARY KEY (partner_id, id);
--bun:split
CREATE INDEX oauth_grants_id_idx ON oauth_grants (id);
--bun:split
-- A code is its grant's: it gains the grant's tenant. A code whose grant is
-- gone could never be exchanged (the exchange loads the grant); it goes.
ALTER TABLE oauth_codes ADD COLUMN partner_id TEXT;
--bun:split
ALTER TABLE oauth_codes ADD COLUMN environment TEXT;
--bun:split
UPDATE oauth_codes SET partner_id = g.partner_id, environment = g.environment
FROM oauth_grants g WHERE g.id = oauth_codes.grant_id;
--bun:split
DELETE FROM oauth_codes WHERE partner_id IS NULL;
--bun:split
ALTER TABLE oauth_codes ALTER COLUMN partner_id SET NOT NULL;
--bun:split
ALTER TABLE oauth_codes ALTER COLUMN environment SET NOT NULL;
--bun:split
ALTER TABLE oauth_codes DROP CONSTRAINT oauth_codes_pkey;
--bun:split
ALTER TABLE oauth_codes ADD PRIMARY KEY (code_hash, partner_id);
--bun:split
ALTER TABLE oauth_tokens DROP CONSTRAINT oauth_tokens_pkey;
--bun:split
ALTER TABLE oauth_tokens ADD PRIMARY KEY (token_hash, partner_id);
--bun:split
ALTER TABLE access_chunks DROP CONSTRAINT access_chunks_pkey;
--bun:split
ALTER TABLE access_chunks ADD PRIMARY KEY (partner_id, id);
--bun:split
CREATE INDEX access_chunks_id_idx ON access_chunks (id);
--bun:split
-- A member's email stays unique across partners: it is how a member signs
-- in. A sharded deployment would keep it in a reference table (README).
ALTER TABLE members DROP CONSTRAINT members_pkey;
--bun:split
ALTER TABLE members ADD PRIMARY KEY (partner_id, id);
--bun:split
CREATE INDEX members_id_idx ON members (id);
--bun:split
ALTER TABLE sessions DROP CONSTRAINT sessions_pkey;
--bun:split
ALTER TABLE sessions ADD PRIMARY KEY (id_hash, partner_id);
--bun:split
ALTER TABLE invitations DROP CONSTRAINT invitations_pkey;
--bun:split
ALTER TABLE invitations ADD PRIMARY KEY (partner_id, id);
--bun:split
ALTER TABLE invitations DROP CONSTRAINT invitations_token_hash_key;
--bun:split
ALTER TABLE invitations ADD CONSTRAINT invitations_token_hash_key UNIQUE (token_hash, partner_id);
--bun:split
CREATE INDEX invitations_id_idx ON invitations (id);
