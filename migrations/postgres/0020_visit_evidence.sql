-- A visit's evidence from the visitor's phone (issue 18): when it ended,
-- the record form's two signatures (被探访人, 探访人员), and with the
-- visitor's consent where the phone was when it began and one photo
-- (resized, its metadata stripped). Kept beside the visit, written in the
-- same transaction, read only where it is shown (the printed form, an
-- official's view of the visit).
CREATE TABLE visit_evidence (
    visit_id BIGINT PRIMARY KEY REFERENCES visits (id),
    ended_at BIGINT,
    elder_signature TEXT,
    elder_mark TEXT NOT NULL DEFAULT 'signature',
    visitor_signature TEXT,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    accuracy_m DOUBLE PRECISION,
    photo BYTEA
);

-- The home's recorded location (WGS 84), set by the registry: a visit's
-- location is shown to officials as its distance from here.
CREATE TABLE home_locations (
    elder_id BIGINT PRIMARY KEY REFERENCES elders (id),
    latitude DOUBLE PRECISION NOT NULL,
    longitude DOUBLE PRECISION NOT NULL,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL
);
