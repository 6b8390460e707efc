DROP TABLE IF EXISTS idempotency_keys;
--bun:split
DROP TABLE IF EXISTS requests;
--bun:split
DROP TABLE IF EXISTS addresses;
--bun:split
DROP TABLE IF EXISTS funding;
--bun:split
DROP TABLE IF EXISTS balances;
