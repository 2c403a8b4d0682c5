-- ACL entries outside the managed schemas that name one of the listed roles or PUBLIC and that the
-- object did not start with (its pg_init_privs entry, else acldefault() for its owner): other
-- databases, tablespaces, languages, foreign-data wrappers and servers, large objects, other
-- schemas, routines and types of other schemas, and the relations of pg_catalog and
-- information_schema (other schemas' relations are their owners' business; so is what PUBLIC holds
-- in another database or schema: `system` says whether an entry is the server's).
-- Each catalog is scanned once; only rows with a stored ACL (a NULL ACL is the default) are
-- exploded, so the rows returned follow the number of grants, not the catalog size.
-- `ident`: the object's name as SQL text (GRANT ... ON <kind word> <ident>).
-- One statement for what plan/outside.py needs: also, as rows of kind `superuser_setting` (ident: the
-- name), the parameters only a superuser may set but for logging and statistics ones (they change
-- what is recorded, not what a role can do); on 15+ the snapshot puts outside_parameters.sql in
-- place of the parameters marker line below (pg_parameter_acl does not exist before). The other
-- databases (outside_databases.sql) take the place of the databases marker line: a fleet reads them
-- once (pgwarden.shared), not in each of its databases.
WITH acls (kind, subkind, classid, objid, owner, ident, acl, code, system) AS (
/* databases */
    SELECT 'tablespace', '', 'pg_catalog.pg_tablespace'::regclass, t.oid, t.spcowner,
           quote_ident(t.spcname), t.spcacl, 't', true
    FROM pg_catalog.pg_tablespace t WHERE t.spcacl IS NOT NULL
  UNION ALL
    SELECT 'language', '', 'pg_catalog.pg_language'::regclass, l.oid, l.lanowner,
           quote_ident(l.lanname), l.lanacl, 'l', true
    FROM pg_catalog.pg_language l WHERE l.lanacl IS NOT NULL
  UNION ALL
    SELECT 'foreign_data_wrapper', '', 'pg_catalog.pg_foreign_data_wrapper'::regclass, w.oid, w.fdwowner,
           quote_ident(w.fdwname), w.fdwacl, 'F', true
    FROM pg_catalog.pg_foreign_data_wrapper w WHERE w.fdwacl IS NOT NULL
  UNION ALL
    SELECT 'foreign_server', '', 'pg_catalog.pg_foreign_server'::regclass, s.oid, s.srvowner,
           quote_ident(s.srvname), s.srvacl, 'S', true
    FROM pg_catalog.pg_foreign_server s WHERE s.srvacl IS NOT NULL
  UNION ALL
    SELECT 'large_object', '', 'pg_catalog.pg_largeobject'::regclass, m.oid, m.lomowner,
           m.oid::text, m.lomacl, 'L', true
    FROM pg_catalog.pg_largeobject_metadata m WHERE m.lomacl IS NOT NULL
  UNION ALL
    SELECT 'schema', '', 'pg_catalog.pg_namespace'::regclass, n.oid, n.nspowner,
           quote_ident(n.nspname), n.nspacl, 'n', false
    FROM pg_catalog.pg_namespace n
    WHERE n.nspacl IS NOT NULL AND n.oid <> ALL(%(schemas)s::oid[])
  UNION ALL
    SELECT 'routine', p.prokind::text, 'pg_catalog.pg_proc'::regclass, p.oid, p.proowner,
           -- argument types only (names and OUT arguments are no part of a function's identity; they
           -- are of a procedure's, 14+)
           format('%%I.%%I(%%s)', n.nspname, p.proname,
                  CASE WHEN p.prokind = 'p' THEN pg_catalog.pg_get_function_identity_arguments(p.oid)
                       ELSE pg_catalog.oidvectortypes(p.proargtypes) END),
           p.proacl, 'f', n.nspname IN ('pg_catalog', 'information_schema')
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE p.proacl IS NOT NULL AND p.pronamespace <> ALL(%(schemas)s::oid[])
  UNION ALL
    SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, c.relkind::text,
           'pg_catalog.pg_class'::regclass, c.oid, c.relowner,
           format('%%I.%%I', n.nspname, c.relname), c.relacl,
           CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END, true
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    -- they come from initdb (oids below FirstNormalObjectId): the oid index reads only them
    WHERE c.oid < 16384 AND c.relacl IS NOT NULL AND n.nspname IN ('pg_catalog', 'information_schema')
  UNION ALL
    SELECT 'type', t.typtype::text, 'pg_catalog.pg_type'::regclass, t.oid, t.typowner,
           format('%%I.%%I', n.nspname, t.typname), t.typacl, 'T',
           n.nspname IN ('pg_catalog', 'information_schema')
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typacl IS NOT NULL AND t.typnamespace <> ALL(%(schemas)s::oid[])
)
SELECT a.kind, a.subkind, a.objid AS oid, a.owner, a.ident,
       e.grantor, e.grantee, e.privilege_type AS privilege, e.is_grantable AS grantable, a.system
FROM acls a CROSS JOIN LATERAL aclexplode(a.acl) e
LEFT JOIN pg_catalog.pg_init_privs i ON i.classoid = a.classid AND i.objoid = a.objid AND i.objsubid = 0
WHERE (e.grantee = ANY(%(roles)s::oid[]) OR e.grantee = 0) AND e.grantee <> a.owner
  -- initdb leaves some system objects (information_schema.sql_features, ...) granted to PUBLIC with no
  -- pg_init_privs row: for an object from initdb (oid < 16384) without one, PUBLIC's entry is initial
  AND NOT (e.grantee = 0 AND i.objoid IS NULL AND a.objid < 16384)
  AND NOT EXISTS (
      SELECT 1 FROM aclexplode(COALESCE(i.initprivs, acldefault(a.code::"char", a.owner))) d
      WHERE d.grantee = e.grantee AND d.privilege_type = e.privilege_type)
UNION ALL
SELECT 'superuser_setting', '', 0::oid, 0::oid, s.name, 0::oid, 0::oid, '', false, true
FROM pg_catalog.pg_settings s
WHERE s.context = 'superuser'
  AND s.category NOT LIKE 'Reporting and Logging%%' AND s.category NOT LIKE 'Statistics%%'
/* parameters */
ORDER BY 1, 5, 7, 8
