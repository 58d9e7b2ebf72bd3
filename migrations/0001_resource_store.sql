-- The versioned resource store: one generic schema for every resource type.
--
-- rid is a UUIDv5 of "<resourceType>/<id>" computed by the server, so the key of a resource
-- is known before any round trip (creates can be flushed as one multi-row insert) and is the
-- same on every node that ever holds it.

CREATE TABLE resource (
  rid            uuid        PRIMARY KEY,
  resource_type  text        NOT NULL,
  id             text        NOT NULL,
  version_id     integer     NOT NULL,
  last_updated   timestamptz NOT NULL,
  deleted        boolean     NOT NULL DEFAULT false,
  -- The current version (NULL once deleted; every version stays in resource_history).
  content        jsonb,
  -- Ids of the patients whose compartment holds this resource (R4 Patient CompartmentDefinition).
  -- Access control filters on it in SQL; it is also the natural distribution key for sharding.
  compartments   text[]      NOT NULL DEFAULT '{}',
  -- Organization id of the writer: the institution that answers for this record.
  custodian      text
);

-- Type-level search without criteria, _lastUpdated, and history paging by type.
CREATE INDEX resource_type_updated_idx ON resource (resource_type, last_updated, rid) WHERE NOT deleted;
CREATE INDEX resource_compartments_idx ON resource USING gin (compartments);

CREATE TABLE resource_history (
  rid            uuid        NOT NULL,
  version_id     integer     NOT NULL,
  resource_type  text        NOT NULL,
  id             text        NOT NULL,
  last_updated   timestamptz NOT NULL,
  -- The interaction that produced the version: POST, PUT, PATCH or DELETE.
  method         text        NOT NULL,
  content        jsonb,
  compartments   text[]      NOT NULL DEFAULT '{}',
  custodian      text,
  PRIMARY KEY (rid, version_id)
);

CREATE INDEX resource_history_updated_idx ON resource_history (last_updated, rid, version_id);
CREATE INDEX resource_history_type_updated_idx ON resource_history (resource_type, last_updated, rid, version_id);
