-- hazard_owned.sql's rows read from every catalog's owner column (for the bootstrap superuser, whose
-- objects pg_shdepend does not record; the tests compare the two). Objects of this database (and the
-- database itself) owned by the listed roles, any schema, any kind, read in this database: the cost follows this database's size,
-- never the cluster's (pg_shdepend holds every ACL reference of these roles in every database).
-- `namespace`: the schema of a relation, routine or type, or the schema itself (the rules skip what the
-- snapshot already covers). Array, multirange and table row types follow their base object and are
-- not listed, like in pg_shdepend. At most 1000 rows.
WITH owned (classid, objid, owner, namespace) AS (
/* include owned_common */
  UNION ALL
    SELECT 'pg_catalog.pg_collation'::regclass, o.oid, o.collowner, NULL
    FROM pg_catalog.pg_collation o WHERE o.collowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_conversion'::regclass, o.oid, o.conowner, NULL
    FROM pg_catalog.pg_conversion o WHERE o.conowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_operator'::regclass, o.oid, o.oprowner, NULL
    FROM pg_catalog.pg_operator o WHERE o.oprowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_opclass'::regclass, o.oid, o.opcowner, NULL
    FROM pg_catalog.pg_opclass o WHERE o.opcowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_opfamily'::regclass, o.oid, o.opfowner, NULL
    FROM pg_catalog.pg_opfamily o WHERE o.opfowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_ts_config'::regclass, o.oid, o.cfgowner, NULL
    FROM pg_catalog.pg_ts_config o WHERE o.cfgowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_ts_dict'::regclass, o.oid, o.dictowner, NULL
    FROM pg_catalog.pg_ts_dict o WHERE o.dictowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_statistic_ext'::regclass, o.oid, o.stxowner, NULL
    FROM pg_catalog.pg_statistic_ext o WHERE o.stxowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_language'::regclass, o.oid, o.lanowner, NULL
    FROM pg_catalog.pg_language o WHERE o.lanowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_foreign_data_wrapper'::regclass, o.oid, o.fdwowner, NULL
    FROM pg_catalog.pg_foreign_data_wrapper o WHERE o.fdwowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_foreign_server'::regclass, o.oid, o.srvowner, NULL
    FROM pg_catalog.pg_foreign_server o WHERE o.srvowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_event_trigger'::regclass, o.oid, o.evtowner, NULL
    FROM pg_catalog.pg_event_trigger o WHERE o.evtowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_publication'::regclass, o.oid, o.pubowner, NULL
    FROM pg_catalog.pg_publication o WHERE o.pubowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_extension'::regclass, o.oid, o.extowner, NULL
    FROM pg_catalog.pg_extension o WHERE o.extowner = ANY(%(roles)s::oid[])
  UNION ALL
    SELECT 'pg_catalog.pg_largeobject'::regclass, o.oid, o.lomowner, NULL
    FROM pg_catalog.pg_largeobject_metadata o WHERE o.lomowner = ANY(%(roles)s::oid[])
  UNION ALL
/* include owned_tail */
