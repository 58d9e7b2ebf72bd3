-- SMART-on-FHIR authorization server state. Everything a login, a launch or a token needs
-- between two requests lives here, so any number of server processes serve the same flows.
-- Secrets, codes and refresh tokens are stored as SHA-256 hashes (passwords as scrypt):
-- a copy of the database gives no usable credential.

CREATE TABLE auth_client (
  client_id      text        PRIMARY KEY,
  name           text        NOT NULL,
  -- public | confidential-symmetric | confidential-asymmetric
  client_type    text        NOT NULL,
  secret_hash    text,
  redirect_uris  text[]      NOT NULL DEFAULT '{}',
  -- The scopes the client may be granted (wildcards allowed, e.g. system/*.rs).
  scopes         text[]      NOT NULL DEFAULT '{}',
  jwks           jsonb,
  jwks_uri       text,
  organization   text,
  -- v3 ActReason codes the client may state (X-Purpose-Of-Use); the first is its default.
  purpose_of_use text[]      NOT NULL DEFAULT '{}',
  -- May manage clients, users, keys and create EHR launch contexts (the admin scope).
  is_admin       boolean     NOT NULL DEFAULT false,
  active         boolean     NOT NULL DEFAULT true,
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth_user (
  user_id        text        PRIMARY KEY,
  username       text        NOT NULL UNIQUE,
  password_hash  text        NOT NULL,
  display_name   text,
  -- "Practitioner/123" or "Patient/456": the user's own FHIR resource.
  fhir_user      text        NOT NULL,
  organization   text,
  active         boolean     NOT NULL DEFAULT true,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- Browser login sessions of the authorization pages (cookie holds the id; stored hashed).
CREATE TABLE auth_session (
  session_hash   text        PRIMARY KEY,
  user_id        text        NOT NULL REFERENCES auth_user (user_id) ON DELETE CASCADE,
  csrf           text        NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  ended_at       timestamptz
);

-- A validated authorization request waiting for login and consent.
CREATE TABLE auth_request (
  request_id     text        PRIMARY KEY,
  client_id      text        NOT NULL REFERENCES auth_client (client_id) ON DELETE CASCADE,
  params         jsonb       NOT NULL,
  expires_at     timestamptz NOT NULL
);

-- Contexts an EHR creates before it launches an app (the launch parameter).
CREATE TABLE auth_launch (
  launch_id      text        PRIMARY KEY,
  client_id      text,
  context        jsonb       NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL
);

CREATE TABLE auth_code (
  code_hash      text        PRIMARY KEY,
  client_id      text        NOT NULL,
  user_id        text        NOT NULL,
  session_hash   text,
  redirect_uri   text        NOT NULL,
  scope          text        NOT NULL,
  code_challenge text        NOT NULL,
  nonce          text,
  context        jsonb       NOT NULL DEFAULT '{}',
  expires_at     timestamptz NOT NULL,
  used_at        timestamptz,
  -- The refresh-token family the exchange started; revoked if the code is replayed.
  family_id      text
);

-- Refresh tokens: each use replaces the token by a new one of the same family; presenting a
-- replaced token again means it leaked, and the whole family is revoked.
CREATE TABLE auth_refresh (
  token_hash     text        PRIMARY KEY,
  family_id      text        NOT NULL,
  client_id      text        NOT NULL,
  user_id        text,
  session_hash   text,
  scope          text        NOT NULL,
  context        jsonb       NOT NULL DEFAULT '{}',
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  used_at        timestamptz,
  revoked_at     timestamptz
);
CREATE INDEX auth_refresh_family_idx ON auth_refresh (family_id);

-- Client assertion ids already accepted (private_key_jwt): never accepted twice.
CREATE TABLE auth_jti (
  client_id      text        NOT NULL,
  jti            text        NOT NULL,
  expires_at     timestamptz NOT NULL,
  PRIMARY KEY (client_id, jti)
);

-- Revoked access tokens (by jti) and refresh-token families (by family id), until the
-- tokens concerned would have expired anyway.
CREATE TABLE auth_revocation (
  id             text        PRIMARY KEY,
  revoked_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL
);
