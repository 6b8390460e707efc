ALTER TABLE api_keys DROP COLUMN expiry_warned_at;
--bun:split
DROP TABLE key_policies;
