-- A Provenance may record several versions: the writes of one transaction that belong to the
-- same patient record and activity share one Provenance (one signature over all of them), so
-- a transaction Bundle of a patient's record adds one Provenance instead of one per entry.
-- The chain keeps one link per Provenance; which versions each Provenance records moves to a
-- table of its own, one row per target version.
CREATE TABLE provenance_target (
  target_rid      uuid    NOT NULL,
  target_version  integer NOT NULL,
  provenance_rid  uuid    NOT NULL,
  -- For reports that name a target whose version or Provenance is gone.
  target_type     text    NOT NULL,
  target_id       text    NOT NULL,
  PRIMARY KEY (target_rid, target_version, provenance_rid)
);
INSERT INTO provenance_target (target_rid, target_version, provenance_rid, target_type, target_id)
  SELECT target_rid, target_version, provenance_rid, target_type, target_id FROM provenance_link;
ALTER TABLE provenance_link
  DROP COLUMN target_rid,
  DROP COLUMN target_version,
  DROP COLUMN target_type,
  DROP COLUMN target_id;
-- Whether a Provenance is the server's own (it has a link) is asked by its id.
CREATE UNIQUE INDEX provenance_link_provenance_idx ON provenance_link (provenance_rid);
