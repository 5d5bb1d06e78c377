//! The ledger (台账) on both databases: a township's file imported whole or
//! not at all, re-imported without change, exported and read back the same,
//! visitors assigned from it.

use anxin_domain::access::Role;
use anxin_domain::ledger::{self, Problem, sheet};
use anxin_domain::registry::CitizenId;
use anxin_store::{ImportError, ImportOutcome, Store};
use anxin_testkit::ledger::{citizen_id, township_ledger};

use crate::{Backend, fresh_store, on_both_backends};

on_both_backends!(
    a_township_ledger_round_trips_through_both_formats_unchanged,
    a_ledger_with_bad_rows_writes_nothing_and_names_every_problem,
);

const T: i64 = 1_780_000_000_000;

fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

fn cells(rows: &[Vec<String>]) -> Vec<Vec<sheet::Cell>> {
    rows.iter().map(|row| row.iter().map(|text| sheet::Cell::Text(text.clone())).collect()).collect()
}

async fn import(store: &Store, rows: &[Vec<sheet::Cell>]) -> Result<ImportOutcome, ImportError> {
    let visitors = store.visitor_names().await.unwrap();
    let ledger = ledger::read(rows, today(), &visitors).map_err(ImportError::Rows)?;
    store.import_ledger(&ledger, "admin", T).await
}

/// The ledger as a township would export it from Anxin.
async fn export(store: &Store, format: sheet::Format) -> Vec<u8> {
    let rows = ledger::sheet_rows(&store.ledger().await.unwrap());
    sheet::write(&rows, format, "台账").unwrap()
}

/// (created, updated, unchanged).
fn counts(outcome: &ImportOutcome) -> (usize, usize, usize) {
    (outcome.created, outcome.updated, outcome.unchanged)
}

async fn a_township_ledger_round_trips_through_both_formats_unchanged(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    store.add_user("visitor-li", Role::Visitor, &[], "a long enough password", T).await.unwrap();
    let file = township_ledger(60, "visitor-li");
    let outcome = import(&store, &cells(&file)).await.unwrap();
    assert_eq!(counts(&outcome), (60, 0, 0));
    assert_eq!(counts(&import(&store, &cells(&file)).await.unwrap()), (0, 0, 60));

    // Every column landed: the first elder, field by field.
    let first = &store.ledger().await.unwrap()[0];
    assert_eq!(first.elder.name, file[1][6]);
    assert_eq!(first.elder.citizen_id.as_ref().map(CitizenId::as_str), Some(file[1][7].as_str()));
    assert_eq!(first.elder.categories, "living_alone,left_behind,dependent,severely_disabled,bereaved_family");
    assert!(first.details.disabled);
    assert_eq!(first.elder.disability_cert.as_deref(), Some(file[1][12].as_str()));
    assert_eq!(first.elder.emergency_contact, None);
    assert_eq!(first.details.members.len(), 1);
    assert_eq!(first.details.members[0].support, ledger::Support::None);
    assert_eq!(first.details.living.monthly_income_fen, Some(80_000));
    assert_eq!(first.details.help.orgs, vec![ledger::HelpOrg::Community, ledger::HelpOrg::Volunteer]);
    assert_eq!(first.visitors, vec!["visitor-li".to_string()]);
    assert_eq!(store.elders_without_visitor().await.unwrap().len(), 48);

    let before = store.ledger().await.unwrap();
    for format in [sheet::Format::Csv, sheet::Format::Xlsx] {
        let bytes = export(&store, format).await;
        let rows = sheet::read(&bytes, format, &sheet::Limits::LEDGER).unwrap();
        assert_eq!(counts(&import(&store, &rows).await.unwrap()), (0, 0, 60));
        assert_eq!(store.ledger().await.unwrap(), before, "{format:?}");
        // The same rows again (an .xlsx's bytes carry the time it was written).
        let again = sheet::read(&export(&store, format).await, format, &sheet::Limits::LEDGER).unwrap();
        assert_eq!(again, rows, "{format:?}");
    }

    // An edited row is updated, the rest left alone; the visitor removed.
    let mut edited = file.clone();
    edited[1][8] = "13800000000".into();
    edited[1][33] = String::new();
    let checked = ledger::read(&cells(&edited), today(), &store.visitor_names().await.unwrap()).unwrap();
    let preview = store.preview_ledger(&checked, "admin", T).await.unwrap();
    assert_eq!(counts(&preview), (0, 1, 59));
    assert_eq!(store.ledger().await.unwrap(), before, "a preview saves nothing");
    let audited = store.audit_entries(None, 1_000).await.unwrap().len();
    let outcome = import(&store, &cells(&edited)).await.unwrap();
    assert_eq!(outcome.changes, preview.changes, "the preview is what the import does");
    let change = &outcome.changes[0];
    assert_eq!((change.line, change.name.as_str()), (2, file[1][6].as_str()));
    assert_eq!(change.columns, ["联系电话", "探访责任人"], "the columns changed or cleared, by header");
    let entries = store.audit_entries(change.elder_id, 1).await.unwrap();
    assert_eq!(entries[0].detail.as_deref(), Some("changed: phone, visitors"), "field names, no values");
    assert!(store.audit_entries(None, 1_000).await.unwrap().len() > audited);
    let first = &store.ledger().await.unwrap()[0];
    assert_eq!(first.elder.phone.as_deref(), Some("13800000000"));
    assert!(first.visitors.is_empty());
}

async fn a_ledger_with_bad_rows_writes_nothing_and_names_every_problem(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let mut file = township_ledger(40, "nobody-yet");
    for row in &mut file[1..] {
        row[33] = String::new();
    }
    let young = citizen_id("19900101", 1);
    let mut wrong_digit = file[3][7].clone();
    wrong_digit.replace_range(17.., if wrong_digit.ends_with('1') { "2" } else { "1" });
    file[2][3] = String::new(); // 村（居）
    file[3][7] = wrong_digit.clone();
    file[4][7] = young.clone();
    file[5][8] = "call me".into();
    file[6][7] = file[7][7].clone();
    file[8][33] = "nobody-yet".into();
    let Err(ImportError::Rows(problems)) = import(&store, &cells(&file)).await else {
        panic!("a bad file was imported");
    };
    let found: Vec<(usize, &str, &Problem)> =
        problems.iter().map(|p| (p.line, p.column.as_deref().unwrap(), &p.problem)).collect();
    assert_eq!(found.len(), 6, "{problems:#?}");
    assert_eq!(found[0], (3, "村（居）", &Problem::Required));
    assert_eq!((found[1].0, found[1].1), (4, "公民身份号码"));
    assert!(matches!(found[1].2, Problem::CitizenId(_)));
    assert_eq!(found[2], (5, "公民身份号码", &Problem::TooYoung { birth: "1990-01-01".into() }));
    assert_eq!(found[3], (6, "联系电话", &Problem::Phone));
    assert_eq!(found[4], (8, "公民身份号码", &Problem::DuplicateCitizenId { line: 7 }));
    assert_eq!(found[5], (9, "探访责任人", &Problem::UnknownVisitor));
    assert!(store.elders().await.unwrap().is_empty(), "nothing may be written");

    // An ID already registered to another elder is refused at import.
    import(&store, &cells(&township_ledger(3, ""))).await.unwrap();
    let exported =
        sheet::read(&export(&store, sheet::Format::Csv).await, sheet::Format::Csv, &sheet::Limits::LEDGER).unwrap();
    let id_column = ledger::headers().iter().position(|h| h == "公民身份号码").unwrap();
    let mut clash = vec![exported[0].clone(), exported[2].clone()];
    clash[1][id_column] = exported[1][id_column].clone();
    let Err(ImportError::Rows(problems)) = import(&store, &clash).await else {
        panic!("a clashing file was imported");
    };
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].problem, Problem::CitizenIdTaken { elder_id: 1 });

    // One elder's number (编号) on two rows: named as such, on the 编号 column.
    let number_column = ledger::headers().iter().position(|h| h == "编号").unwrap();
    let mut twice = vec![exported[0].clone(), exported[1].clone(), exported[2].clone()];
    twice[2][number_column] = exported[1][number_column].clone();
    twice[2][id_column] = sheet::Cell::Text(String::new());
    let Err(ImportError::Rows(problems)) = import(&store, &twice).await else {
        panic!("a file naming one elder twice was imported");
    };
    let found: Vec<_> = problems.iter().map(|p| (p.line, p.column.as_deref(), &p.problem)).collect();
    assert_eq!(found, vec![(3, Some("编号"), &Problem::DuplicateId { line: 2 })]);
    assert!(problems[0].problem.english().contains("elder number"), "{}", problems[0].problem.english());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_elders_in_three_townships_import_at_once_and_again_unchanged() {
    let (store, _guard) = fresh_store(Backend::Sqlite).await;
    store.add_user("visitor-li", Role::Visitor, &[], "a long enough password", T).await.unwrap();
    let file = township_ledger(5_000, "visitor-li");
    // First as a township might send it: a few bad rows among the 5,000.
    let mut with_bad_rows = file.clone();
    with_bad_rows[1_200][7] = citizen_id("19900101", 7); // under 60
    with_bad_rows[2_500][3] = String::new(); // no village
    with_bad_rows[4_999][7] = with_bad_rows[10][7].clone(); // the same ID twice
    with_bad_rows[3_333][33] = "nobody".into(); // not a visitor
    let bad = sheet::read(
        &sheet::write(&with_bad_rows, sheet::Format::Xlsx, "台账").unwrap(),
        sheet::Format::Xlsx,
        &sheet::Limits::LEDGER,
    );
    let Err(ImportError::Rows(problems)) = import(&store, &bad.unwrap()).await else {
        panic!("a ledger with bad rows was imported");
    };
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![1_201, 2_501, 3_334, 5_000], "{problems:#?}");
    assert!(store.elders().await.unwrap().is_empty(), "nothing of it written");

    let xlsx = sheet::write(&file, sheet::Format::Xlsx, "台账").unwrap();
    let rows = sheet::read(&xlsx, sheet::Format::Xlsx, &sheet::Limits::LEDGER).unwrap();
    assert_eq!(import(&store, &rows).await.unwrap().created, 5_000);
    assert_eq!(import(&store, &rows).await.unwrap().unchanged, 5_000);
    let elders = store.elders().await.unwrap();
    for township in anxin_testkit::ledger::TOWNSHIPS {
        let count = elders.iter().filter(|e| e.township == township).count();
        assert!((1_666..=1_667).contains(&count), "{township}: {count}");
    }
    assert_eq!(store.elders_without_visitor().await.unwrap().len(), 4_000);
}
