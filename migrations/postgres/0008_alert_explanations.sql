-- The engine's explanation of an alert as data (a sentence and its
-- parameters, JSON: domain/src/alerts/explanation.rs) beside its English in
-- `detail`, so the console renders it in the reader's language without
-- parsing the English back. Alerts raised before this have none: their
-- English is shown as written.
ALTER TABLE alerts ADD COLUMN explanation TEXT;
