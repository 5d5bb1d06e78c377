-- A visit sent from a phone (or a form submitted twice) carries the id its
-- client gave it: sent again, it is found, never recorded twice.
ALTER TABLE visits ADD COLUMN client_id TEXT;
CREATE UNIQUE INDEX visits_client_id ON visits (client_id) WHERE client_id IS NOT NULL;
