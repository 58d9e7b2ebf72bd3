-- Reindexing (npm run reindex) and the state of the search index.
--
-- search_reindex_progress: one row per resource type of the run under way. Each batch
-- commits its index rows and the keyset cursor (last_updated, rid) together, so an
-- interrupted run resumes where it stopped; a completed run removes its rows.
CREATE TABLE search_reindex_progress (
  resource_type  text        PRIMARY KEY,
  last_updated   timestamptz,
  last_rid       uuid,
  resources      bigint      NOT NULL DEFAULT 0,
  started_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz
);

-- The fingerprint of the search parameters the index was built with. The server compares it
-- with its own at start-up and warns when they differ (the index then needs a reindex).
CREATE TABLE search_index_state (
  singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
  fingerprint  text        NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
