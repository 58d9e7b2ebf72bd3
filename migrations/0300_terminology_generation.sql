-- One counter that every write of a CodeSystem, ValueSet, ConceptMap or NamingSystem bumps in
-- its own transaction (src/terminology/stored.ts). Each server process compares it with the
-- value its terminology cache was built for, so caches in every worker follow client updates
-- on the next request.
CREATE TABLE terminology_generation (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  generation bigint  NOT NULL
);
INSERT INTO terminology_generation (singleton, generation) VALUES (true, 0);
