ALTER TABLE platform_services ADD COLUMN revoked_at TIMESTAMPTZ;
