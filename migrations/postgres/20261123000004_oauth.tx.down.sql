DROP TABLE IF EXISTS oauth_tokens;
--bun:split
DROP TABLE IF EXISTS oauth_codes;
--bun:split
DROP TABLE IF EXISTS oauth_grants;
--bun:split
DROP TABLE IF EXISTS oauth_clients;
--bun:split
DROP TABLE IF EXISTS sessions;
--bun:split
DROP TABLE IF EXISTS members;
