-- How big the connected database's catalog is, without reading it: pg_class's file size (a stat).
-- pgwarden.parallel decides from it whether a check's reads are worth a second connection.
SELECT pg_catalog.pg_relation_size('pg_catalog.pg_class'::pg_catalog.regclass) AS pg_class_bytes
