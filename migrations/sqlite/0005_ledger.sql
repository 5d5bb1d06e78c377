-- The ledger (台账): the rest of the record form's parts 1 to 4 (annex 1),
-- staff visits with the form's part 5, referrals (需求转介) and care services
-- (关爱服务, part 6).

-- Part 1: 是否残疾 (the certificate number may be missing on paper).
ALTER TABLE elders ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
UPDATE elders SET disabled = 1 WHERE disability_cert IS NOT NULL;
-- Part 3, living conditions: safety as 1 (是) / 0 (否) / NULL (not recorded).
ALTER TABLE elders ADD COLUMN water_safe INTEGER;
ALTER TABLE elders ADD COLUMN power_safe INTEGER;
ALTER TABLE elders ADD COLUMN housing_safe INTEGER;
-- 家庭每月收入, in fen (1/100 yuan).
ALTER TABLE elders ADD COLUMN monthly_income_fen INTEGER;
-- 每月领取养老保险、社会救助和社会福利补贴等情况.
ALTER TABLE elders ADD COLUMN benefits TEXT;
-- Part 4, help already received: kinds of helping organisation
-- (comma-separated codes), the person responsible, the measures.
ALTER TABLE elders ADD COLUMN help_orgs TEXT NOT NULL DEFAULT '';
ALTER TABLE elders ADD COLUMN help_person TEXT;
ALTER TABLE elders ADD COLUMN help_measures TEXT;

-- A citizen ID identifies one elder: the ledger import matches rows by it.
CREATE UNIQUE INDEX elders_citizen_id ON elders (citizen_id);

-- Part 2: household members; position 1 is the head of household (户主).
CREATE TABLE household_members (
    elder_id   INTEGER NOT NULL REFERENCES elders (id),
    position   INTEGER NOT NULL,
    name       TEXT NOT NULL,
    sex        TEXT,
    citizen_id TEXT,
    relation   TEXT,
    health     TEXT,
    -- none, minimum_income (低保对象) or destitute (特困人员)
    support    TEXT NOT NULL DEFAULT 'none',
    PRIMARY KEY (elder_id, position)
);

-- Part 5 on staff visits: the judgements as JSON (see visits.rs), the needs,
-- the suggested care and who typed the record in.
ALTER TABLE visits ADD COLUMN assessment TEXT;
ALTER TABLE visits ADD COLUMN needs TEXT;
ALTER TABLE visits ADD COLUMN suggestions TEXT;
ALTER TABLE visits ADD COLUMN recorded_by TEXT;
CREATE INDEX visits_day ON visits (day);

-- 需求转介: a need found on a visit, sent to a named service, tracked to done.
CREATE TABLE referrals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    elder_id    INTEGER NOT NULL REFERENCES elders (id),
    visit_id    INTEGER REFERENCES visits (id),
    -- care, rehabilitation, home_adaptation, psychological, social_worker
    service     TEXT NOT NULL,
    need        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    done_at     INTEGER,
    done_by     TEXT,
    outcome     TEXT
);
CREATE INDEX referrals_elder ON referrals (elder_id);

-- Part 6: care services given.
CREATE TABLE care_services (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    elder_id     INTEGER NOT NULL REFERENCES elders (id),
    day          TEXT NOT NULL,
    description  TEXT NOT NULL,
    served_by    TEXT NOT NULL,
    -- very_satisfied, satisfied, neutral, dissatisfied
    satisfaction TEXT,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX care_services_elder ON care_services (elder_id);
