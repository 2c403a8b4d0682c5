-- The leased logins (the caller matched the policy's patterns against the snapshot's roles): whether
-- each is expired by the server's clock, and what it holds in this database according to
-- pg_shdepend (a shared catalog: rows of this database, plus the database's own ACL entry and
-- ownership, which are recorded as shared): what it owns ('o') and where it is named in an ACL ('a'),
-- each object described by pg_describe_object.
SELECT r.oid AS role, r.rolname AS name,
       (r.rolvaliduntil IS NOT NULL AND r.rolvaliduntil < pg_catalog.now()) AS expired,
       COALESCE(ARRAY(SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
                      FROM pg_catalog.pg_shdepend d
                      WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND d.refobjid = r.oid
                        AND d.deptype = 'o' AND (d.dbid = me.oid OR (d.dbid = 0 AND d.classid =
                            'pg_catalog.pg_database'::pg_catalog.regclass AND d.objid = me.oid))
                      ORDER BY 1), '{}') AS owns,
       COALESCE(ARRAY(SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
                      FROM pg_catalog.pg_shdepend d
                      WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND d.refobjid = r.oid
                        AND d.deptype = 'a' AND (d.dbid = me.oid OR (d.dbid = 0 AND d.classid =
                            'pg_catalog.pg_database'::pg_catalog.regclass AND d.objid = me.oid))
                      ORDER BY 1), '{}') AS grants
FROM pg_catalog.pg_roles r,
     (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) me
WHERE r.oid = ANY (%(roles)s::oid[])
ORDER BY r.rolname
