-- The column-level ACLs of the managed schemas' (%(schemas)s) relations and of the system catalogs
-- (pg_catalog, information_schema: with what initdb gave, `initial`), rare: one scan of pg_attribute
-- for the rows that have one (~1.7M rows, 110-160 ms at 100,000 tables, PostgreSQL 16: no index
-- leads to them, and pg_shdepend has no row for a grant to PUBLIC alone). And every other column of
-- the tables named in %(column_tables)s (a policy's column exceptions: their columns must hold
-- column grants), found by name through the catalogs' indexes. One row, one JSON column: a scalar
-- subquery of database.sql (its columns marker line), or alone on a big database's second
-- connection (pgwarden.snapshot.inspect), while the first reads the rest.
SELECT COALESCE(json_agg(json_build_object(
           'relation', a.attrelid::int8, 'schema', c.relnamespace::int8, 'table', c.relname::text,
           'schema_name', c.relnamespace::regnamespace::text,
           'subkind', c.relkind::text, 'owner', c.relowner::int8, 'column', a.attname::text,
           'acl', (SELECT json_agg(json_build_array(x.grantor, x.grantee, x.privilege_type, x.is_grantable)
                                   ORDER BY x.grantee, x.privilege_type)
                   FROM aclexplode(a.attacl) x),
           'system', c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace),
           'initial', (SELECT json_agg(json_build_array(x.grantor, x.grantee, x.privilege_type, x.is_grantable))
                       FROM pg_catalog.pg_init_privs i, aclexplode(i.initprivs) x
                       WHERE i.classoid = 'pg_catalog.pg_class'::regclass AND i.objoid = a.attrelid
                         AND i.objsubid = a.attnum))
         ORDER BY c.relnamespace, c.relname, a.attnum), '[]') AS columns
FROM (SELECT a.attrelid, a.attname, a.attnum, a.attacl
      FROM pg_catalog.pg_attribute a
      WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
      UNION ALL
      SELECT a.attrelid, a.attname, a.attnum, a.attacl
      FROM json_to_recordset(%(column_tables)s::json) AS w(s text, t text)
      JOIN pg_catalog.pg_namespace tn ON tn.nspname = w.s
      JOIN pg_catalog.pg_class t ON t.relnamespace = tn.oid AND t.relname = w.t
      JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid
      WHERE a.attacl IS NULL AND a.attnum > 0 AND NOT a.attisdropped) a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
      OR c.relnamespace = ANY(ARRAY(SELECT n.oid FROM pg_catalog.pg_namespace n
                                     WHERE n.nspname = ANY(%(schemas)s::text[])))
