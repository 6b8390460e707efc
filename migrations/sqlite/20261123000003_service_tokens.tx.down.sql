DROP TABLE IF EXISTS platform_services;
--bun:split
DROP TABLE IF EXISTS service_credentials;
