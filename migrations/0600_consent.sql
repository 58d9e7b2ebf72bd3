-- Consent-based sharing between institutions: every current Consent flattened into the rules
-- (provisions) the access filter evaluates in SQL, kept in the Consent write's transaction.
--
-- consent_index has one row per current, undeleted Consent and the version that was
-- flattened (also for Consents that grant nothing), so that start-up can tell which stored
-- Consents still need flattening. Rows follow their resource: expunging a Consent removes them.

CREATE TABLE consent_index (
  rid         uuid    PRIMARY KEY REFERENCES resource (rid) ON DELETE CASCADE,
  version_id  integer NOT NULL
);

-- One row per provision of an active patient-privacy Consent (and per alternative of its
-- security-label conditions), its conditions already intersected with its ancestors'.
-- Empty arrays mean "no condition"; values that cannot match anyone here (an actor on another
-- server, a purpose from another code system) are kept, so the provision matches nobody.
CREATE TABLE consent_provision (
  consent_rid     uuid     NOT NULL REFERENCES consent_index (rid) ON DELETE CASCADE,
  -- The patient whose records the provision governs (Consent.patient): the lookup key.
  patient         text     NOT NULL,
  -- Position in the provision tree: {} the root, {0} its first nested provision, {0,1} ...
  path            integer[] NOT NULL,
  -- Alternatives of one provision (its securityLabel conditions as a disjunction).
  variant         integer  NOT NULL,
  permit          boolean  NOT NULL,
  -- "Organization/<id>", "Practitioner/<id>" (or any reference as written).
  actors          text[]   NOT NULL,
  -- v3 ActReason codes (other systems as "system|code").
  purposes        text[]   NOT NULL,
  -- Resource types.
  classes         text[]   NOT NULL,
  -- "Type/id" of Consent.provision.data with meaning instance.
  data            text[]   NOT NULL,
  -- "system|code" security labels the record must all carry.
  labels          text[]   NOT NULL,
  -- Bounds on the record's v3 Confidentiality rank (U 0, L 1, M 2, N 3, R 4, V 5): a
  -- confidentiality label in a permit covers records up to it, in a deny records from it up.
  conf_min        smallint,
  conf_max        smallint,
  period          tstzrange NOT NULL,
  PRIMARY KEY (consent_rid, path, variant)
);
CREATE INDEX consent_provision_patient_idx ON consent_provision (patient, permit);

-- A resource version's security labels as "system|code" (its meta.security).
CREATE FUNCTION fhir_security_labels(content jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(coalesce(s->>'system', '') || '|' || coalesce(s->>'code', '')), '{}')
  FROM jsonb_array_elements(
    CASE WHEN jsonb_typeof(content->'meta'->'security') = 'array' THEN content->'meta'->'security' ELSE '[]'::jsonb END
  ) AS s
$$;

-- A resource version's v3 Confidentiality rank (highest label), N (3) when it carries none.
CREATE FUNCTION fhir_confidentiality(content jsonb) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(max(CASE s->>'code' WHEN 'U' THEN 0 WHEN 'L' THEN 1 WHEN 'M' THEN 2 WHEN 'N' THEN 3
                                      WHEN 'R' THEN 4 WHEN 'V' THEN 5 END), 3)::smallint
  FROM jsonb_array_elements(
    CASE WHEN jsonb_typeof(content->'meta'->'security') = 'array' THEN content->'meta'->'security' ELSE '[]'::jsonb END
  ) AS s
  WHERE s->>'system' = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality'
$$;

-- The labels that govern a row of resource or resource_history: its own and its resource's
-- current ones, so that labelling a record later also covers its earlier versions.
CREATE FUNCTION consent_record_labels(rid uuid, content jsonb) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT fhir_security_labels(content) || coalesce((SELECT fhir_security_labels(c.content) FROM resource c WHERE c.rid = $1), '{}')
$$;

CREATE FUNCTION consent_record_confidentiality(rid uuid, content jsonb) RETURNS smallint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT greatest(fhir_confidentiality(content),
                  (SELECT fhir_confidentiality(c.content) FROM resource c WHERE c.rid = $1 AND c.content IS NOT NULL))
$$;
