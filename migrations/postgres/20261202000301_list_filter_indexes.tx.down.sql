DROP INDEX audit_events_credential_idx;
--bun:split
DROP INDEX audit_events_type_idx;
--bun:split
DROP INDEX api_keys_status_idx;
--bun:split
DROP INDEX addresses_network_idx;
--bun:split
DROP INDEX addresses_status_idx;
--bun:split
DROP INDEX funding_currency_idx;
--bun:split
DROP INDEX funding_status_idx;
--bun:split
DROP INDEX requests_address_idx;
--bun:split
DROP INDEX requests_currency_idx;
--bun:split
DROP INDEX requests_status_idx;
