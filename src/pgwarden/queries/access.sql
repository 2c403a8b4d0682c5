-- The facts of the effective-access model (pgwarden.access), in one round trip. The relations are
-- those of the managed schemas (%(start)s NULL: `review`), or the tables named in %(start)s (`check`:
-- the policy's exceptions); then, walked upwards, everything that exposes their rows or columns:
-- `derived`: views and materialized views (the dependencies of their _RETURN rule, column by column),
--   other rules (their action touches the relation) and inheritance parents (querying a parent or a
--   partitioned table reads its children's rows). Costs what the views, rules and inheritance
--   links cost, not what the tables do.
-- `relations`: each reached relation with its owner, kind, ACL (the default made explicit), row
--   security, security_invoker (15+), its schema's owner and ACL, and its columns with their ACLs.
-- `routines`: SECURITY DEFINER routines of every non-system schema (and, for `review`, every
--   routine of the managed schemas) with their ACL, the reached relations they reference (recorded
--   by PostgreSQL for SQL-standard bodies, else named in their source) and the triggers that run them.
WITH RECURSIVE
managed AS (SELECT ARRAY(SELECT n.oid FROM pg_catalog.pg_namespace n
                         WHERE n.nspname = ANY(%(schemas)s::text[])) AS oids),
start AS (
    SELECT c.oid FROM pg_catalog.pg_class c
    WHERE %(start)s::json IS NULL AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND c.relnamespace = ANY((SELECT oids FROM managed)::oid[])
    UNION
    SELECT c.oid
    FROM json_to_recordset(COALESCE(%(start)s::json, '[]'::json)) AS w(s text, t text)
    JOIN pg_catalog.pg_namespace n ON n.nspname = w.s
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.t),
edges AS MATERIALIZED (
    SELECT DISTINCT r.ev_class AS via, d.refobjid AS base, d.refobjsubid::int AS col,
           CASE WHEN r.rulename <> '_RETURN' THEN 'rule' WHEN v.relkind = 'm' THEN 'matview' ELSE 'view' END AS kind,
           CASE WHEN r.rulename <> '_RETURN' THEN r.rulename::text END AS rule,
           r.ev_type::text AS event
    FROM pg_catalog.pg_rewrite r
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
    WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> r.ev_class AND d.deptype = 'n'
      AND (SELECT b.relkind FROM pg_catalog.pg_class b WHERE b.oid = d.refobjid) IN ('r', 'p', 'v', 'm', 'f')
    UNION ALL
    SELECT i.inhparent, i.inhrelid, 0, 'parent', NULL, NULL FROM pg_catalog.pg_inherits i),
reach(oid) AS (
    SELECT oid FROM start
    UNION
    SELECT e.via FROM edges e JOIN reach ON e.base = reach.oid),
relations AS (
    SELECT c.*, n.nspname, n.nspowner, n.nspacl FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid IN (SELECT oid FROM reach)),
routines AS (
    SELECT p.oid, p.pronamespace, p.proname, p.prokind, p.proowner, p.prosecdef, p.proacl, p.prosrc,
           n.nspname, n.nspowner, n.nspacl
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE (p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%%')
       OR (%(start)s::json IS NULL AND p.pronamespace = ANY((SELECT oids FROM managed)::oid[])))
SELECT
    (SELECT COALESCE(json_agg(json_build_object('via', e.via::int8, 'base', e.base::int8, 'column', e.col,
                                                'kind', e.kind, 'rule', e.rule, 'event', e.event)
                              ORDER BY e.via, e.base, e.col), '[]')
     FROM edges e WHERE e.base IN (SELECT oid FROM reach)) AS derived,
    (SELECT COALESCE(json_agg(json_build_object(
                'oid', c.oid::int8, 'schema', c.nspname::text, 'name', c.relname::text, 'subkind', c.relkind::text,
                'owner', c.relowner::int8, 'rls', c.relrowsecurity,
                'invoker', COALESCE(c.reloptions::text[] && ARRAY['security_invoker=true', 'security_invoker=on',
                                    'security_invoker=1', 'security_invoker=yes'], false),
                'acl', (SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable))
                        FROM aclexplode(COALESCE(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char",
                                                                      c.relowner))) a),
                'schema_owner', c.nspowner::int8,
                'schema_acl', (SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable))
                               FROM aclexplode(COALESCE(c.nspacl, acldefault('n', c.nspowner))) a),
                'columns', (SELECT COALESCE(json_agg(json_build_object(
                                'name', t.attname::text, 'num', t.attnum::int,
                                'acl', (SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type,
                                                                         a.is_grantable))
                                        FROM aclexplode(t.attacl) a)) ORDER BY t.attnum), '[]')
                            FROM pg_catalog.pg_attribute t
                            WHERE t.attrelid = c.oid AND t.attnum > 0 AND NOT t.attisdropped))
            ORDER BY c.nspname, c.relname), '[]')
     FROM relations c) AS relations,
    (SELECT COALESCE(json_agg(json_build_object(
                'oid', p.oid::int8, 'schema', p.nspname::text, 'name', p.proname::text, 'subkind', p.prokind::text,
                'args', pg_catalog.pg_get_function_identity_arguments(p.oid), 'owner', p.proowner::int8,
                'definer', p.prosecdef,
                'acl', (SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable))
                        FROM aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a),
                'schema_owner', p.nspowner::int8,
                'schema_acl', (SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable))
                               FROM aclexplode(COALESCE(p.nspacl, acldefault('n', p.nspowner))) a),
                'references', CASE WHEN p.prosecdef THEN (
                    SELECT COALESCE(json_agg(DISTINCT jsonb_build_array(x.rel::int8, x.col)), '[]')
                    FROM (SELECT d.refobjid AS rel, d.refobjsubid::int AS col FROM pg_catalog.pg_depend d
                          WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                            AND d.refclassid = 'pg_catalog.pg_class'::regclass
                            AND d.refobjid IN (SELECT oid FROM reach)
                          UNION ALL
                          SELECT r.oid, 0 FROM relations r
                          WHERE r.relkind <> 'S' AND p.prosrc ~* ('(^|[^a-z0-9_$])'
                                || regexp_replace(r.relname, '([^a-zA-Z0-9_])', '\\\1', 'g') || '($|[^a-z0-9_$])')) x)
                    ELSE '[]' END,
                'triggers', (SELECT COALESCE(json_agg(json_build_array(t.tgrelid::int8, t.tgtype::int)), '[]')
                             FROM pg_catalog.pg_trigger t
                             WHERE t.tgfoid = p.oid AND NOT t.tgisinternal AND t.tgrelid IN (SELECT oid FROM reach)))
            ORDER BY p.nspname, p.proname, p.oid), '[]')
     FROM routines p) AS routines
