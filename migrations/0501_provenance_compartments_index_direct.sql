-- As 0002 for the resource table: the compartment index of the Provenance chain links is
-- updated as each link is written, so that reading it (verification by patient) never has to
-- scan GIN's pending list of entries not yet merged.
ALTER INDEX provenance_link_compartments_idx SET (fastupdate = off);
SELECT gin_clean_pending_list('provenance_link_compartments_idx'::regclass);
