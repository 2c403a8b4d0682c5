-- The server and the connected role: version, who we are, what we may do.
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       current_database() AS database,
       r.oid AS current_role_oid,
       r.rolname AS current_role,
       r.rolsuper AS is_superuser,
       r.rolcreaterole AS can_createrole,
       r.rolcreatedb AS can_createdb,
       has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS can_read_authid,
       -- what identifies a managed service (providers.py): its own parameters and extensions
       -- current_setting(.., true): a provider's own parameter, or NULL (placeholders are not in pg_settings)
       ARRAY(SELECT n FROM unnest(%(settings)s::text[]) AS n WHERE current_setting(n, true) IS NOT NULL
             ORDER BY 1) AS settings,
       ARRAY(SELECT e.extname FROM pg_catalog.pg_extension e ORDER BY 1) AS extensions,
       (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database()) AS database_oid,
       -- what the cluster-level reads (pgwarden.shared) depend on besides the cluster: the role,
       -- VALID UNTIL's time zone and the collation the databases' names sort by (a fleet reads
       -- them once where these agree; pg_init_privs, which is per database, has no row for a
       -- database: neither initdb nor an extension records one)
       -- (and the libraries a session of this database loads besides the server's and the role's,
       -- whose parameters pg_settings lists: a fleet reads the superuser-only parameters once too;
       -- from pg_db_role_setting, which any role may read, not current_setting(), which needs
       -- pg_read_all_settings for these two)
       (SELECT json_build_array(current_user, current_setting('TimeZone'), d.datcollate, d.datctype,
                                to_jsonb(d) -> 'datlocprovider', to_jsonb(d) -> 'daticulocale',
                                to_jsonb(d) -> 'datlocale', to_jsonb(d) -> 'daticurules',
                                (SELECT array_agg(c ORDER BY s.setrole, c)
                                 FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) AS c
                                 WHERE s.setdatabase = d.oid AND s.setrole IN (0, r.oid)
                                   AND split_part(c, '=', 1) IN ('session_preload_libraries',
                                                                 'local_preload_libraries')))::text
        FROM pg_catalog.pg_database d WHERE d.datname = current_database()) AS compat,
       -- how big the catalog is, without reading it: pg_class's file size (a stat, no scan): a big one
       -- gives the objects query its own settings (pgwarden.fetch) and check a second connection
       -- (pgwarden.parallel)
       pg_catalog.pg_relation_size('pg_catalog.pg_class'::pg_catalog.regclass) AS catalog_bytes,
       -- what lets the hazard reads (pgwarden.hazards) leave out a query that would return no row:
       -- `definers`: a schema of %(schemas)s has a SECURITY DEFINER routine (pg_proc is small; row
       -- security is read by hazard_rls.sql itself: knowing that no relation has it takes a scan of pg_class)
       EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
               WHERE p.prosecdef AND p.pronamespace IN (SELECT n.oid FROM pg_catalog.pg_namespace n
                                                        WHERE n.nspname = ANY(%(schemas)s::text[]))) AS definers
FROM pg_catalog.pg_roles r
WHERE r.rolname = current_user
