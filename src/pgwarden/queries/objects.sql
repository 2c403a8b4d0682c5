-- Tables, sequences and routines of the managed schemas, grouped by (schema, kind, owner, ACL):
-- a compliant schema collapses to a handful of rows whatever its size. Object names are listed
-- only where a plan may need them: small groups, objects not owned by %(owner)s, and
-- (schema, kind) pairs that contain extension members (bulk statements would touch those).
WITH obj AS (
    SELECT c.oid, c.relnamespace AS schema, c.relowner AS owner,
           CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind,
           c.relkind::text AS subkind, c.relname::text AS name, NULL::text AS args,
           c.relacl::text AS acl_text,
           CASE WHEN c.relkind = 'S' THEN acldefault('s', c.relowner)
                ELSE acldefault('r', c.relowner) END AS acl_default,
           ext.objid IS NOT NULL AS extension,
           -- a serial/identity sequence follows its table's owner
           (c.relkind = 'S' AND linked.objid IS NOT NULL) AS linked
    FROM pg_catalog.pg_class c
    LEFT JOIN pg_catalog.pg_depend ext
           ON ext.classid = 'pg_catalog.pg_class'::regclass AND ext.objid = c.oid AND ext.deptype = 'e'
    LEFT JOIN pg_catalog.pg_depend linked
           ON c.relkind = 'S' AND linked.classid = 'pg_catalog.pg_class'::regclass
          AND linked.objid = c.oid AND linked.refobjsubid > 0 AND linked.deptype IN ('a', 'i')
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND c.relnamespace = ANY(%(schemas)s::oid[])
    UNION ALL
    SELECT p.oid, p.pronamespace, p.proowner, 'routine', p.prokind::text, p.proname::text,
           pg_catalog.pg_get_function_identity_arguments(p.oid),
           p.proacl::text, acldefault('f', p.proowner),
           ext.objid IS NOT NULL, false
    FROM pg_catalog.pg_proc p
    LEFT JOIN pg_catalog.pg_depend ext
           ON ext.classid = 'pg_catalog.pg_proc'::regclass AND ext.objid = p.oid AND ext.deptype = 'e'
    WHERE p.pronamespace = ANY(%(schemas)s::oid[])
),
sized AS (
    SELECT obj.*,
           count(*) OVER (PARTITION BY schema, kind, owner, extension, linked, acl_text) AS group_size,
           bool_or(extension) OVER (PARTITION BY schema, kind) AS kind_has_extension
    FROM obj
)
SELECT schema, kind, owner, extension, linked, acl_text IS NULL AS default_acl, count(*) AS count,
       COALESCE((SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable)
                                 ORDER BY a.grantee, a.privilege_type)
                 FROM aclexplode(COALESCE(acl_text::aclitem[], min(acl_default::text)::aclitem[])) a),
                '[]') AS acl,
       json_agg(json_build_array(oid, name, subkind, args) ORDER BY name, oid)
           FILTER (WHERE group_size <= %(threshold)s OR owner <> %(owner)s::oid OR kind_has_extension)
           AS objects
FROM sized
GROUP BY schema, kind, owner, extension, linked, acl_text
ORDER BY schema, kind, owner, acl_text NULLS FIRST
