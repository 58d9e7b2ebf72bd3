-- Multi-column statistics for the search index.
--
-- A token search filters on p, system and code together, and those columns are strongly
-- correlated: every row of DiagnosticReport.category with code LAB has the same system. Read
-- as independent, their selectivities multiply into an estimate of about one row where there
-- are thousands, and the planner then starts a search such as DiagnosticReport?patient=&
-- category=LAB from the category (every laboratory report of every patient, 0.5 s at 2,000
-- patients) instead of from the patient (a dozen rows, 2 ms). These statistics (most common
-- combinations, functional dependencies, distinct counts) give it the real frequencies; they
-- are refreshed by every ANALYZE, autovacuum's included.
CREATE STATISTICS IF NOT EXISTS sp_token_value_stats ON p, system, code FROM sp_token;
CREATE STATISTICS IF NOT EXISTS sp_quantity_value_stats ON p, system, code FROM sp_quantity;
CREATE STATISTICS IF NOT EXISTS sp_composite_value_stats ON p, t1_system, t1_code FROM sp_composite;
CREATE STATISTICS IF NOT EXISTS sp_uri_value_stats ON p, value FROM sp_uri;
CREATE STATISTICS IF NOT EXISTS sp_string_value_stats ON p, norm FROM sp_string;
