-- Everything in the current database owned by %(role)s, from each catalog's owner column (pg_shdepend
-- records nothing for the bootstrap superuser). One row per object with the names needed to build
-- ALTER <kind> <name> OWNER TO: schema and name as separate identifiers; `args` is server-rendered
-- text (routine identity arguments, operator operand types via format_type, an index access method).
-- Skipped: initdb objects (OID < 16384, except the public schema and large objects), extension
-- members, pinned and internal objects, sequences owned by a column (they follow their table),
-- temporary schemas and objects, array and multirange types (they follow their base type),
-- table row types (they follow the table). `action` is 'alter' or 'report' (kinds that cannot move).
WITH owned (catalog, objid, owner, kind, schema, name, args, action, ord) AS (
    SELECT 'pg_database'::regclass, d.oid, d.datdba, 'DATABASE', NULL::name, d.datname, NULL::text, 'alter', 0
    FROM pg_catalog.pg_database d WHERE d.datname = current_database()
  UNION ALL
    SELECT 'pg_namespace'::regclass, n.oid, n.nspowner, 'SCHEMA', NULL, n.nspname, NULL, 'alter', 1
    FROM pg_catalog.pg_namespace n
    WHERE n.nspname !~ '^pg_(toast_)?temp_'
  UNION ALL
    SELECT 'pg_type'::regclass, t.oid, t.typowner, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
           tn.nspname, t.typname, NULL, 'alter', 2
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
    WHERE t.typtype IN ('b', 'c', 'd', 'e', 'r')
      AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
  UNION ALL
    SELECT 'pg_proc'::regclass, p.oid, p.proowner,
           CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
           pn.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid), 'alter', 3
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
  UNION ALL
    SELECT 'pg_class'::regclass, c.oid, c.relowner,
           CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                          WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
           cn.nspname, c.relname, NULL, 'alter',
           -- partitions after their parent: the parent's move does not cascade, but it reads better
           CASE WHEN c.relispartition THEN 5 ELSE 4 END
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relpersistence <> 't'
  UNION ALL
    SELECT 'pg_collation'::regclass, o.oid, o.collowner, 'COLLATION', n.nspname, o.collname, NULL, 'alter', 6
    FROM pg_catalog.pg_collation o JOIN pg_catalog.pg_namespace n ON n.oid = o.collnamespace
  UNION ALL
    SELECT 'pg_conversion'::regclass, o.oid, o.conowner, 'CONVERSION', n.nspname, o.conname, NULL, 'alter', 6
    FROM pg_catalog.pg_conversion o JOIN pg_catalog.pg_namespace n ON n.oid = o.connamespace
  UNION ALL
    SELECT 'pg_operator'::regclass, o.oid, o.oprowner, 'OPERATOR', n.nspname, o.oprname,
           CASE WHEN o.oprleft = 0 THEN 'NONE' ELSE pg_catalog.format_type(o.oprleft, NULL) END || ', '
             || CASE WHEN o.oprright = 0 THEN 'NONE' ELSE pg_catalog.format_type(o.oprright, NULL) END,
           'alter', 6
    FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
  UNION ALL
    SELECT 'pg_opfamily'::regclass, o.oid, o.opfowner, 'OPERATOR FAMILY', n.nspname, o.opfname, a.amname, 'alter', 7
    FROM pg_catalog.pg_opfamily o JOIN pg_catalog.pg_namespace n ON n.oid = o.opfnamespace
    JOIN pg_catalog.pg_am a ON a.oid = o.opfmethod
  UNION ALL
    SELECT 'pg_opclass'::regclass, o.oid, o.opcowner, 'OPERATOR CLASS', n.nspname, o.opcname, a.amname, 'alter', 7
    FROM pg_catalog.pg_opclass o JOIN pg_catalog.pg_namespace n ON n.oid = o.opcnamespace
    JOIN pg_catalog.pg_am a ON a.oid = o.opcmethod
  UNION ALL
    SELECT 'pg_ts_config'::regclass, o.oid, o.cfgowner, 'TEXT SEARCH CONFIGURATION', n.nspname, o.cfgname, NULL,
           'alter', 6
    FROM pg_catalog.pg_ts_config o JOIN pg_catalog.pg_namespace n ON n.oid = o.cfgnamespace
  UNION ALL
    SELECT 'pg_ts_dict'::regclass, o.oid, o.dictowner, 'TEXT SEARCH DICTIONARY', n.nspname, o.dictname, NULL,
           'alter', 6
    FROM pg_catalog.pg_ts_dict o JOIN pg_catalog.pg_namespace n ON n.oid = o.dictnamespace
  UNION ALL
    SELECT 'pg_statistic_ext'::regclass, o.oid, o.stxowner, 'STATISTICS', n.nspname, o.stxname, NULL, 'alter', 6
    FROM pg_catalog.pg_statistic_ext o JOIN pg_catalog.pg_namespace n ON n.oid = o.stxnamespace
  UNION ALL
    SELECT 'pg_language'::regclass, o.oid, o.lanowner, 'LANGUAGE', NULL, o.lanname, NULL, 'alter', 6
    FROM pg_catalog.pg_language o
  UNION ALL
    SELECT 'pg_foreign_server'::regclass, o.oid, o.srvowner, 'SERVER', NULL, o.srvname, NULL, 'alter', 8
    FROM pg_catalog.pg_foreign_server o
  UNION ALL
    SELECT 'pg_publication'::regclass, o.oid, o.pubowner, 'PUBLICATION', NULL, o.pubname, NULL, 'alter', 8
    FROM pg_catalog.pg_publication o
  UNION ALL
    SELECT 'pg_largeobject'::regclass, o.oid, o.lomowner, 'LARGE OBJECT', NULL, o.oid::text, NULL, 'alter', 9
    FROM pg_catalog.pg_largeobject_metadata o
  UNION ALL
    SELECT 'pg_foreign_data_wrapper'::regclass, o.oid, o.fdwowner, 'FOREIGN DATA WRAPPER', NULL, o.fdwname, NULL,
           'report', 10
    FROM pg_catalog.pg_foreign_data_wrapper o
  UNION ALL
    SELECT 'pg_event_trigger'::regclass, o.oid, o.evtowner, 'EVENT TRIGGER', NULL, o.evtname, NULL, 'report', 10
    FROM pg_catalog.pg_event_trigger o
  UNION ALL
    SELECT 'pg_subscription'::regclass, o.oid, o.subowner, 'SUBSCRIPTION', NULL, o.subname, NULL, 'report', 10
    FROM pg_catalog.pg_subscription o
    WHERE o.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
  UNION ALL
    SELECT 'pg_extension'::regclass, o.oid, o.extowner, 'EXTENSION', NULL, o.extname, NULL, 'report', 10
    FROM pg_catalog.pg_extension o
)
SELECT o.catalog::text AS catalog, o.objid::bigint AS objid, o.kind, o.schema::text AS schema, o.name::text AS name,
       o.args, o.action, o.ord
FROM owned o
WHERE o.owner = %(role)s::oid
  -- whole-object dependencies only: a partitioned table's key columns depend internally on the
  -- table itself (objsubid > 0), which must not hide the table
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = o.catalog AND d.objid = o.objid AND d.objsubid = 0
                    AND d.deptype IN ('e', 'p', 'i'))
  AND (o.objid >= 16384 OR (o.catalog = 'pg_namespace'::regclass AND o.name = 'public')
       OR o.catalog IN ('pg_largeobject'::regclass, 'pg_database'::regclass))
  AND NOT (o.catalog = 'pg_class'::regclass AND EXISTS (
           SELECT 1 FROM pg_catalog.pg_depend d
           WHERE d.classid = 'pg_class'::regclass AND d.objid = o.objid AND d.refclassid = 'pg_class'::regclass
             AND d.refobjsubid > 0 AND d.deptype = 'a'))
  -- objects in temporary schemas belong to a session, not to the database
  AND (o.schema IS NULL OR o.schema !~ '^pg_(toast_)?temp_')
  -- pgwarden's ledger stays the admin's: the owner must not be able to rewrite it (docs/change-control.md)
  AND NOT (o.catalog = 'pg_namespace'::regclass AND o.name = 'pgwarden_ledger')
  AND o.schema IS DISTINCT FROM 'pgwarden_ledger'
ORDER BY o.ord, o.schema NULLS FIRST, o.name, o.args NULLS FIRST, o.objid
