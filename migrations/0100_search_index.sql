-- Search index: typed rows extracted at write time, in the write's transaction.
--
-- Every row carries rid (the resource row key) and p, a 32-bit key of "<Type>.<parameter>"
-- computed by the server (src/search/registry.ts). Each table has one index led by the
-- value, for searches that start from a value, and one led by rid, for checking a value of
-- a resource already found (and for rewriting a resource's rows).
-- Text columns use the "C" collation: byte order makes prefix LIKE use the btree.

CREATE TABLE sp_token (
  rid     uuid    NOT NULL,
  p       integer NOT NULL,
  system  text COLLATE "C",
  code    text COLLATE "C",
  -- Lower-cased, accent-free display text (Coding.display, CodeableConcept.text), for :text.
  display text COLLATE "C"
);
CREATE INDEX sp_token_value_idx ON sp_token (p, code, system) INCLUDE (rid);
CREATE INDEX sp_token_system_idx ON sp_token (p, system) INCLUDE (rid);
CREATE INDEX sp_token_display_idx ON sp_token (p, display) INCLUDE (rid) WHERE display IS NOT NULL;
CREATE INDEX sp_token_rid_idx ON sp_token (rid, p) INCLUDE (system, code);

CREATE TABLE sp_string (
  rid   uuid    NOT NULL,
  p     integer NOT NULL,
  -- Lower-cased, accent-free: the default (prefix) and :contains searches.
  norm  text COLLATE "C" NOT NULL,
  -- As written: :exact.
  exact text COLLATE "C" NOT NULL
);
CREATE INDEX sp_string_value_idx ON sp_string (p, norm) INCLUDE (rid);
CREATE INDEX sp_string_rid_idx ON sp_string (rid, p) INCLUDE (norm);

-- Dates as the range of instants they cover (precision as range): [lo, hi].
CREATE TABLE sp_date (
  rid uuid        NOT NULL,
  p   integer     NOT NULL,
  lo  timestamptz NOT NULL,
  hi  timestamptz NOT NULL
);
CREATE INDEX sp_date_value_idx ON sp_date (p, lo, hi) INCLUDE (rid);
CREATE INDEX sp_date_hi_idx ON sp_date (p, hi) INCLUDE (rid);
CREATE INDEX sp_date_rid_idx ON sp_date (rid, p) INCLUDE (lo, hi);

CREATE TABLE sp_number (
  rid   uuid    NOT NULL,
  p     integer NOT NULL,
  value numeric NOT NULL
);
CREATE INDEX sp_number_value_idx ON sp_number (p, value) INCLUDE (rid);
CREATE INDEX sp_number_rid_idx ON sp_number (rid, p) INCLUDE (value);

CREATE TABLE sp_quantity (
  rid    uuid    NOT NULL,
  p      integer NOT NULL,
  value  numeric NOT NULL,
  system text COLLATE "C",
  code   text COLLATE "C",
  unit   text COLLATE "C"
);
CREATE INDEX sp_quantity_value_idx ON sp_quantity (p, value) INCLUDE (rid, system, code, unit);
CREATE INDEX sp_quantity_rid_idx ON sp_quantity (rid, p) INCLUDE (value);

CREATE TABLE sp_uri (
  rid   uuid    NOT NULL,
  p     integer NOT NULL,
  value text COLLATE "C" NOT NULL
);
CREATE INDEX sp_uri_value_idx ON sp_uri (p, value) INCLUDE (rid);
CREATE INDEX sp_uri_rid_idx ON sp_uri (rid, p) INCLUDE (value);

-- References: target_rid is the rid of the target (UUIDv5 of "Type/id"), known without a
-- lookup, which makes forward search, chaining, _has, _include and _revinclude joins on one
-- key. url holds absolute references to other servers and canonical references.
CREATE TABLE sp_reference (
  rid         uuid    NOT NULL,
  p           integer NOT NULL,
  target_rid  uuid,
  target_type text COLLATE "C",
  target_id   text COLLATE "C",
  url         text COLLATE "C"
);
CREATE INDEX sp_reference_target_idx ON sp_reference (p, target_rid) INCLUDE (rid);
CREATE INDEX sp_reference_reverse_idx ON sp_reference (target_rid) INCLUDE (rid, p);
CREATE INDEX sp_reference_url_idx ON sp_reference (p, url) INCLUDE (rid) WHERE url IS NOT NULL;
CREATE INDEX sp_reference_rid_idx ON sp_reference (rid, p) INCLUDE (target_rid, target_type, target_id);

-- Composite parameters: one row per element holding all components. R4's composites are a
-- token or reference followed by a token, quantity, date, string or two numbers.
CREATE TABLE sp_composite (
  rid        uuid    NOT NULL,
  p          integer NOT NULL,
  ref_rid    uuid,
  t1_system  text COLLATE "C",
  t1_code    text COLLATE "C",
  t2_system  text COLLATE "C",
  t2_code    text COLLATE "C",
  num1       numeric,
  num2       numeric,
  lo         timestamptz,
  hi         timestamptz,
  str        text COLLATE "C"
);
CREATE INDEX sp_composite_value_idx ON sp_composite (p, t1_code, t1_system) INCLUDE (rid);
CREATE INDEX sp_composite_ref_idx ON sp_composite (p, ref_rid) INCLUDE (rid) WHERE ref_rid IS NOT NULL;
CREATE INDEX sp_composite_rid_idx ON sp_composite (rid, p);
