DROP TABLE IF EXISTS master_key_checks;
