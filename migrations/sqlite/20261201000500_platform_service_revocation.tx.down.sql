ALTER TABLE platform_services DROP COLUMN revoked_at;
