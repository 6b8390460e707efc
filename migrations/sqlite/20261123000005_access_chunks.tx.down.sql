DROP TABLE IF EXISTS access_chunks;
