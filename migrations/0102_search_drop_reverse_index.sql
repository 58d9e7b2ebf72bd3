-- Every reference lookup by target knows the parameter keys it follows (chains, _has,
-- _revinclude, also _revinclude=* through the parameters that may point to the type), so
-- the (p, target_rid) index serves them all; the target-only index only cost write time.
DROP INDEX IF EXISTS sp_reference_reverse_idx;
