-- Every filter a list offers, per tenant, then the list's order (id, newest
-- first): a filtered page reads its rows from the index instead of walking
-- the tenant's rows until enough match.
CREATE INDEX requests_status_idx ON requests (partner_id, environment, status, id);
--bun:split
CREATE INDEX requests_currency_idx ON requests (partner_id, environment, currency, id);
--bun:split
CREATE INDEX requests_address_idx ON requests (partner_id, environment, address_id, id);
--bun:split
CREATE INDEX funding_status_idx ON funding (partner_id, environment, status, id);
--bun:split
CREATE INDEX funding_currency_idx ON funding (partner_id, environment, currency, id);
--bun:split
CREATE INDEX addresses_status_idx ON addresses (partner_id, environment, status, id);
--bun:split
CREATE INDEX addresses_network_idx ON addresses (partner_id, environment, network, id);
--bun:split
CREATE INDEX api_keys_status_idx ON api_keys (partner_id, environment, status, id);
--bun:split
CREATE INDEX audit_events_type_idx ON audit_events (partner_id, environment, type, id);
--bun:split
CREATE INDEX audit_events_credential_idx ON audit_events (partner_id, environment, credential_id, id);
