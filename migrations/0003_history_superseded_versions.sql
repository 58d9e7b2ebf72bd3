-- resource_history keeps the versions that were replaced; the current version lives in
-- `resource` alone, and the view resource_version is every version of every resource.
--
-- Until now every version was written twice: as the current row and as a history row. A
-- create (nearly every write of an ingest, and the Provenance of every write) paid for a second
-- heap row, a second TOASTed copy of its content and three more index entries, and history held
-- a copy of everything current. Now an update or delete first copies the row it replaces into
-- history, inside PostgreSQL (no second JSON parse), in the same statement as the UPDATE.
--
-- `method` (POST, PUT, PATCH, DELETE: the interaction that wrote the version) moves onto the
-- current row with it. A replaced version records when it was replaced (`replaced_at`, the
-- next version's last_updated), so history `_at` (the versions current at some instant) is a
-- filter on each row instead of a window over every version of a type.

ALTER TABLE resource_history ADD COLUMN replaced_at timestamptz;
UPDATE resource_history h SET replaced_at = n.last_updated
  FROM resource_history n WHERE n.rid = h.rid AND n.version_id = h.version_id + 1;

ALTER TABLE resource ADD COLUMN method text;
UPDATE resource r SET method = h.method FROM resource_history h WHERE h.rid = r.rid AND h.version_id = r.version_id;
-- A current row whose history row is missing (removed by hand) gets the method its state implies.
UPDATE resource SET method = CASE WHEN deleted THEN 'DELETE' WHEN version_id = 1 THEN 'POST' ELSE 'PUT' END
  WHERE method IS NULL;
ALTER TABLE resource ALTER COLUMN method SET NOT NULL;

-- Where the two copies of a current version differ, the current one (what reads return) stays.
DELETE FROM resource_history h USING resource r WHERE h.rid = r.rid AND h.version_id = r.version_id;

-- History by type and system-wide now reads `resource` too, deleted rows included, in the order
-- of resource_history's own indexes: the type index loses its NOT deleted predicate (searches
-- keep filtering on deleted; deleted rows are few) and gains version_id.
DROP INDEX resource_type_updated_idx;
CREATE INDEX resource_type_updated_idx ON resource (resource_type, last_updated, rid, version_id);
CREATE INDEX resource_updated_idx ON resource (last_updated, rid, version_id);

CREATE VIEW resource_version AS
  SELECT rid, version_id, resource_type, id, last_updated, method, content, compartments, custodian,
         NULL::timestamptz AS replaced_at
    FROM resource
  UNION ALL
  SELECT rid, version_id, resource_type, id, last_updated, method, content, compartments, custodian, replaced_at
    FROM resource_history;
