-- ACL entries outside the managed schemas that name one of the listed roles or PUBLIC and that the
-- object did not start with (its pg_init_privs entry, else acldefault() for its owner): other
-- databases, tablespaces, languages, foreign-data wrappers and servers, large objects, other
-- schemas, routines and types of other schemas, and the relations of pg_catalog and
-- information_schema (other schemas' relations are their owners' business; so is what PUBLIC holds
-- in another database or schema: `system` says whether an entry is the server's).
-- Each catalog is scanned once; only rows with a stored ACL (a NULL ACL is the default) that differs
-- from the one the object started with are exploded (an equal ACL holds no entry it did not start
-- with), so the rows returned follow the number of grants, not the catalog size.
-- `ident`: the object's name as SQL text (GRANT ... ON <kind word> <ident>), made for the rows kept only.
-- One statement for what plan/outside.py needs: also, as rows of kind `superuser_setting`
-- (outside_settings.sql, in place of the settings marker line below; a fleet reads them once, in
-- pgwarden.shared), the parameters only a superuser may set; on 15+ the snapshot puts
-- outside_parameters.sql in place of the parameters marker line (pg_parameter_acl does not exist
-- before). The other databases (outside_databases.sql) take the place of the databases marker
-- line: a fleet reads them once (pgwarden.shared), not in each of its databases.
WITH acls (kind, subkind, classid, objid, owner, nsp, name, acl, code, system) AS (
/* databases */
    SELECT 'tablespace', '', 'pg_catalog.pg_tablespace'::regclass, t.oid, t.spcowner,
           NULL::name, t.spcname, t.spcacl, 't', true
    FROM pg_catalog.pg_tablespace t WHERE t.spcacl IS NOT NULL
  UNION ALL
    SELECT 'language', '', 'pg_catalog.pg_language'::regclass, l.oid, l.lanowner,
           NULL, l.lanname, l.lanacl, 'l', true
    FROM pg_catalog.pg_language l WHERE l.lanacl IS NOT NULL
  UNION ALL
    SELECT 'foreign_data_wrapper', '', 'pg_catalog.pg_foreign_data_wrapper'::regclass, w.oid, w.fdwowner,
           NULL, w.fdwname, w.fdwacl, 'F', true
    FROM pg_catalog.pg_foreign_data_wrapper w WHERE w.fdwacl IS NOT NULL
  UNION ALL
    SELECT 'foreign_server', '', 'pg_catalog.pg_foreign_server'::regclass, s.oid, s.srvowner,
           NULL, s.srvname, s.srvacl, 'S', true
    FROM pg_catalog.pg_foreign_server s WHERE s.srvacl IS NOT NULL
  UNION ALL
    SELECT 'large_object', '', 'pg_catalog.pg_largeobject'::regclass, m.oid, m.lomowner,
           NULL, NULL, m.lomacl, 'L', true
    FROM pg_catalog.pg_largeobject_metadata m WHERE m.lomacl IS NOT NULL
  UNION ALL
    SELECT 'schema', '', 'pg_catalog.pg_namespace'::regclass, n.oid, n.nspowner,
           NULL, n.nspname, n.nspacl, 'n', false
    FROM pg_catalog.pg_namespace n
    WHERE n.nspacl IS NOT NULL AND n.oid <> ALL(%(schemas)s::oid[])
  UNION ALL
    SELECT 'routine', p.prokind::text, 'pg_catalog.pg_proc'::regclass, p.oid, p.proowner,
           n.nspname, p.proname, p.proacl, 'f', n.nspname IN ('pg_catalog', 'information_schema')
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE p.proacl IS NOT NULL AND p.pronamespace <> ALL(%(schemas)s::oid[])
  UNION ALL
    SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, c.relkind::text,
           'pg_catalog.pg_class'::regclass, c.oid, c.relowner,
           n.nspname, c.relname, c.relacl, CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END, true
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    -- they come from initdb (oids below FirstNormalObjectId): the oid index reads only them
    WHERE c.oid < 16384 AND c.relacl IS NOT NULL AND n.nspname IN ('pg_catalog', 'information_schema')
  UNION ALL
    SELECT 'type', t.typtype::text, 'pg_catalog.pg_type'::regclass, t.oid, t.typowner,
           n.nspname, t.typname, t.typacl, 'T', n.nspname IN ('pg_catalog', 'information_schema')
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typacl IS NOT NULL AND t.typnamespace <> ALL(%(schemas)s::oid[])
),
-- what each object started with; an object whose ACL is still exactly that has no entry to report
changed AS (
    SELECT a.*, i.objoid IS NULL AS no_init, COALESCE(i.initprivs, acldefault(a.code::"char", a.owner)) AS initial
    FROM acls a
    LEFT JOIN pg_catalog.pg_init_privs i ON i.classoid = a.classid AND i.objoid = a.objid AND i.objsubid = 0
    WHERE a.acl <> COALESCE(i.initprivs, acldefault(a.code::"char", a.owner))
)
SELECT a.kind, a.subkind, a.objid AS oid, a.owner,
       CASE WHEN a.kind = 'routine'
            -- argument types only (names and OUT arguments are no part of a function's identity; they
            -- are of a procedure's, 14+)
            THEN format('%%I.%%I(%%s)', a.nsp, a.name,
                        CASE WHEN a.subkind = 'p' THEN pg_catalog.pg_get_function_identity_arguments(a.objid)
                             ELSE (SELECT pg_catalog.oidvectortypes(p.proargtypes) FROM pg_catalog.pg_proc p
                                   WHERE p.oid = a.objid) END)
            WHEN a.kind = 'large_object' THEN a.objid::text
            WHEN a.nsp IS NOT NULL THEN format('%%I.%%I', a.nsp, a.name)
            ELSE quote_ident(a.name) END AS ident,
       e.grantor, e.grantee, e.privilege_type AS privilege, e.is_grantable AS grantable, a.system
FROM changed a CROSS JOIN LATERAL aclexplode(a.acl) e
WHERE (e.grantee = ANY(%(roles)s::oid[]) OR e.grantee = 0) AND e.grantee <> a.owner
  -- initdb leaves some system objects (information_schema.sql_features, ...) granted to PUBLIC with no
  -- pg_init_privs row: for an object from initdb (oid < 16384) without one, PUBLIC's entry is initial
  AND NOT (e.grantee = 0 AND a.no_init AND a.objid < 16384)
  AND NOT EXISTS (
      SELECT 1 FROM aclexplode(a.initial) d
      WHERE d.grantee = e.grantee AND d.privilege_type = e.privilege_type)
UNION ALL
-- one row of kind `foreign_servers` where this database has a foreign server (a user mapping needs one:
-- pgwarden.hazards reads the mappings only then; the catalog is open here already)
SELECT 'foreign_servers', '', 0::oid, 0::oid, '', 0::oid, 0::oid, '', false, true
WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_server s)
/* settings */
/* parameters */
ORDER BY 1, 5, 7, 8
