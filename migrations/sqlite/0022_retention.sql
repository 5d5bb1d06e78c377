-- Retention (issue 19): an elder who left the programme long enough ago is
-- anonymised by the daily retention job; when, so that it happens once and
-- the elder's page can say so. The job's batches look for the oldest rows
-- first: visits and alerts by their time (tables of thousands of rows a
-- year for a district).
ALTER TABLE elders ADD COLUMN anonymised_at INTEGER;
CREATE INDEX visits_visited_at ON visits (visited_at);
CREATE INDEX alerts_resolved_at ON alerts (resolved_at);
