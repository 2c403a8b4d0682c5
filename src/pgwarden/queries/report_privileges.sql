-- Effective privileges of the listed roles on the objects of the managed schemas, counted per
-- (role, schema, kind, privilege); PUBLIC (role 0) from the exploded ACLs (has_* cannot ask for it).
WITH o AS (
    SELECT c.oid, c.relnamespace AS schema, CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind,
           COALESCE(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl
    FROM pg_catalog.pg_class c
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relnamespace = ANY(%(schemas)s::oid[])
    UNION ALL
    SELECT p.oid, p.pronamespace, 'routine', COALESCE(p.proacl, acldefault('f', p.proowner))
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = ANY(%(schemas)s::oid[])
),
privs AS (
    SELECT 'table' AS kind, unnest(%(table_privs)s::text[]) AS priv
    UNION ALL SELECT 'sequence', unnest(ARRAY['USAGE', 'SELECT', 'UPDATE'])
    UNION ALL SELECT 'routine', 'EXECUTE'
)
SELECT r.oid AS role, o.schema, o.kind, p.priv AS privilege,
       count(*) FILTER (WHERE CASE o.kind
                                WHEN 'table' THEN has_table_privilege(r.oid, o.oid, p.priv)
                                WHEN 'sequence' THEN has_sequence_privilege(r.oid, o.oid, p.priv)
                                ELSE has_function_privilege(r.oid, o.oid, p.priv) END) AS held,
       count(*) AS total
FROM o JOIN privs p ON p.kind = o.kind
CROSS JOIN pg_catalog.pg_roles r
WHERE r.oid = ANY(%(roles)s::oid[])
GROUP BY 1, 2, 3, 4
UNION ALL
SELECT 0, o.schema, o.kind, p.priv,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM aclexplode(o.acl) a WHERE a.grantee = 0 AND a.privilege_type = p.priv)),
       count(*)
FROM o JOIN privs p ON p.kind = o.kind
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
