-- The server's signing keys (access tokens, id tokens, Provenance signatures).
--
-- Keys live in the database, not in a process, so every server process signs with the same
-- key and any of them can verify what another signed. Rotation adds a new active key and
-- retires the old one: a retired key no longer signs but stays published in the JWKS (and
-- usable for verification) until it expires, so tokens and signatures it made stay valid.
CREATE TABLE signing_key (
  kid          text        PRIMARY KEY,
  alg          text        NOT NULL,
  public_jwk   jsonb       NOT NULL,
  private_jwk  jsonb       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  -- Set when a newer key replaces this one for signing.
  retired_at   timestamptz,
  -- After this instant the key is neither published nor accepted. NULL: kept for good
  -- (Provenance signatures must stay verifiable for the records' whole retention period).
  expires_at   timestamptz
);

-- At most one active (signing) key per algorithm.
CREATE UNIQUE INDEX signing_key_active_idx ON signing_key (alg) WHERE retired_at IS NULL;
