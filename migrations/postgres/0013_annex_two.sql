-- Annex 2: a 留守 elder's date the children left (`YYYY-MM-DD`), from which
-- the half-year re-check counts.
ALTER TABLE elders ADD COLUMN left_behind_since TEXT;
