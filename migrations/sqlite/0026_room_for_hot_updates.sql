-- PostgreSQL's 0026 leaves room on the pages of rows updated with every
-- batch (fillfactor). SQLite has no such setting: nothing to do here; the
-- number is kept in step.
SELECT 1;
