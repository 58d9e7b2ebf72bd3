-- Signed Provenance (src/provenance): hash chains, the index of their links, the keys that
-- signed client (author) signatures, and the keys users register to sign what they write.

-- A server key that has signed a Provenance is kept for good: those signatures must stay
-- verifiable for the records' whole retention period (30 years), whatever retention a
-- rotation asked for. Token keys keep their expiry.
ALTER TABLE signing_key ADD COLUMN signs_records boolean NOT NULL DEFAULT false;

-- A practitioner's own public keys (a JWKS), with which they sign resources they write.
ALTER TABLE auth_user ADD COLUMN signing_jwks jsonb;

-- The head of each Provenance chain. A write's Provenances join the chain chosen by a stable
-- key (the patient compartment, else the resource), so writes of different patients rarely
-- wait for each other; the head row is locked only at the end of the write's transaction.
CREATE TABLE provenance_chain (
  chain       integer     PRIMARY KEY,
  -- Number of Provenances in the chain (the seq of the newest).
  seq         bigint      NOT NULL DEFAULT 0,
  -- SHA-256 (base64url) of the newest Provenance's canonical JSON; NULL while the chain is empty.
  head_hash   text,
  head_id     text,
  updated_at  timestamptz
);

-- One row per server-written Provenance: its place in its chain and the version it records.
-- An index for verification, not the evidence: the evidence is in the signed Provenances.
CREATE TABLE provenance_link (
  chain           integer     NOT NULL,
  seq             bigint      NOT NULL,
  provenance_id   text        NOT NULL,
  provenance_rid  uuid        NOT NULL,
  -- SHA-256 (base64url) of the Provenance's canonical JSON as stored.
  hash            text        NOT NULL,
  target_rid      uuid        NOT NULL,
  target_version  integer     NOT NULL,
  target_type     text        NOT NULL,
  target_id       text        NOT NULL,
  compartments    text[]      NOT NULL DEFAULT '{}',
  recorded        timestamptz NOT NULL,
  PRIMARY KEY (chain, seq)
);
CREATE INDEX provenance_link_target_idx ON provenance_link (target_rid, target_version);
CREATE INDEX provenance_link_compartments_idx ON provenance_link USING gin (compartments);
CREATE INDEX provenance_link_recorded_idx ON provenance_link (recorded);

-- Every user key that verified an author signature, kept so that the signature stays
-- verifiable after the user replaces or removes the key.
CREATE TABLE provenance_signer_key (
  fhir_user   text        NOT NULL,
  kid         text        NOT NULL,
  -- RFC 7638 JWK thumbprint: a kid may be reused for a new key.
  thumbprint  text        NOT NULL,
  jwk         jsonb       NOT NULL,
  first_used  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (fhir_user, kid, thumbprint)
);
