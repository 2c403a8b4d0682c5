-- Types and domains of the managed schemas that the policy's owner does not own (a compliant
-- database returns no row). Left out, as adopt leaves them: array and multirange types and table
-- row types (they follow their base object), and extension members.
SELECT t.oid::int8 AS oid, t.typnamespace AS schema, t.typname::text AS name, t.typtype::text AS subkind,
       t.typowner AS owner
FROM pg_catalog.pg_type t
WHERE t.typnamespace = ANY(%(schemas)s::oid[]) AND t.typowner <> %(owner)s::oid
  AND t.typtype IN ('b', 'c', 'd', 'e', 'r')
  AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
ORDER BY t.typnamespace, t.typname
