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
    annex_two_is_applied_to_every_row_each_rule_with_a_good_and_a_bad_row,
    an_exit_in_the_ledger_is_applied_once_and_never_changed_or_undone_by_an_import,
    an_emergency_contact_who_agreed_joins_the_call_list_from_the_ledger,
);

const T: i64 = 1_780_000_000_000;

/// The 探访责任人 column of the simulator's township ledger.
const VISITORS: usize = 34;

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
    edited[1][VISITORS] = String::new();
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
        row[VISITORS] = String::new();
    }
    let young = citizen_id("19900101", 1);
    let mut wrong_digit = file[3][7].clone();
    wrong_digit.replace_range(17.., if wrong_digit.ends_with('1') { "2" } else { "1" });
    file[2][3] = String::new(); // 村（居）
    file[3][7] = wrong_digit.clone();
    file[4][7] = young.clone();
    file[5][8] = "call me".into();
    file[6][7] = file[7][7].clone();
    file[8][VISITORS] = "nobody-yet".into();
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
    with_bad_rows[3_333][VISITORS] = "nobody".into(); // not a visitor
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

/// Columns of the simulator's township ledger.
const PHONE: usize = 8;
const DISABLED: usize = 11;
const CERTIFICATE: usize = 12;
const FIRST_CATEGORY: usize = 13;
const LEFT_BEHIND: usize = 15;
const SEVERELY_DISABLED: usize = 17;
const LEFT_BEHIND_SINCE: usize = 19;

async fn annex_two_is_applied_to_every_row_each_rule_with_a_good_and_a_bad_row(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let base = township_ledger(8, "");
    let certificate = |row: &[String], grade: char| format!("{}4{grade}", row[7]);
    let mut good = base.clone();
    // A grade-2 certificate makes 重残 even where the column says 否.
    good[1][DISABLED] = "是".into();
    good[1][CERTIFICATE] = certificate(&good[1], '2');
    good[1][SEVERELY_DISABLED] = "否".into();
    // A grade-3 certificate is not 重残.
    good[2][DISABLED] = "是".into();
    good[2][CERTIFICATE] = certificate(&good[2], '3');
    good[2][SEVERELY_DISABLED] = "否".into();
    // A mobile typed with +86 and spaces, kept in its normal form.
    good[3][PHONE] = "+86 139 0415 0001".into();
    // 留守 with the date the children left.
    good[4][LEFT_BEHIND] = "是".into();
    good[4][LEFT_BEHIND_SINCE] = "2026/05/01".into();

    let mut bad = good.clone();
    bad[1][CERTIFICATE] = certificate(&good[2], '2'); // another person's certificate
    bad[2][SEVERELY_DISABLED] = "是".into(); // 重残 with a grade-3 certificate
    bad[3][PHONE] = "1390415000".into(); // ten digits starting with 1
    bad[4][LEFT_BEHIND_SINCE] = String::new(); // 留守 without the date
    for cell in &mut bad[5][FIRST_CATEGORY..FIRST_CATEGORY + 6] {
        *cell = "否".into(); // no category at all
    }
    let Err(ImportError::Rows(problems)) = import(&store, &cells(&bad)).await else {
        panic!("a ledger breaking annex 2 was imported");
    };
    let found: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.problem.key())).collect();
    assert_eq!(
        found,
        vec![
            (2, "certificate_not_the_elders"),
            (3, "certificate_not_severe"),
            (4, "phone"),
            (5, "left_behind_since"),
            (6, "no_category"),
        ],
        "{problems:#?}"
    );
    assert!(store.elders().await.unwrap().is_empty(), "nothing written");

    import(&store, &cells(&good)).await.unwrap();
    let ledger = store.ledger().await.unwrap();
    let categories = |line: usize| ledger[line - 2].elder.categories.clone();
    assert!(categories(2).contains("severely_disabled"), "{}", categories(2));
    assert!(!categories(3).contains("severely_disabled"), "{}", categories(3));
    assert_eq!(ledger[2].elder.phone.as_deref(), Some("13904150001"));
    assert_eq!(ledger[3].elder.left_behind_since, chrono::NaiveDate::from_ymd_opt(2026, 5, 1));
    // Exported and read again, nothing changes.
    let rows =
        sheet::read(&export(&store, sheet::Format::Csv).await, sheet::Format::Csv, &sheet::Limits::LEDGER).unwrap();
    assert_eq!(import(&store, &rows).await.unwrap().unchanged, 8);

    // The sample ledger's grade-1 and grade-2 certificates all make 重残.
    let (sample_store, _sample_guard) = fresh_store(backend).await;
    let sample = township_ledger(100, "");
    let severe_certificates =
        sample[1..].iter().filter(|row| row[CERTIFICATE].len() == 20 && row[CERTIFICATE].ends_with(['1', '2'])).count();
    assert!(severe_certificates > 3, "the sample holds some");
    import(&sample_store, &cells(&sample)).await.unwrap();
    let severe =
        sample_store.elders().await.unwrap().iter().filter(|e| e.categories.contains("severely_disabled")).count();
    assert_eq!(severe, severe_certificates);
}

async fn an_exit_in_the_ledger_is_applied_once_and_never_changed_or_undone_by_an_import(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    import(&store, &cells(&township_ledger(5, ""))).await.unwrap();
    store.pair_device("jia-node", 1, T).await.unwrap();
    let text = |cell: &sheet::Cell| cell.text();
    let exported =
        sheet::read(&export(&store, sheet::Format::Csv).await, sheet::Format::Csv, &sheet::Limits::LEDGER).unwrap();
    let rows: Vec<Vec<String>> = exported.iter().map(|row| row.iter().map(text).collect()).collect();
    let column = |header: &str| rows[0].iter().position(|h| h == header).unwrap();
    let (reason, date) = (column("退出原因"), column("退出日期"));
    assert!(rows[1][reason].is_empty(), "an elder in the programme has none");

    // 退出原因 without 退出日期 is refused, and so is a date to come.
    let mut half = rows.clone();
    half[1][reason] = "死亡".into();
    let Err(ImportError::Rows(problems)) = import(&store, &cells(&half)).await else { panic!("half an exit") };
    assert_eq!(problems[0].problem, Problem::ExitIncomplete);
    let mut future = half.clone();
    future[1][date] = "2099-01-01".into();
    let Err(ImportError::Rows(problems)) = import(&store, &cells(&future)).await else { panic!("a future exit") };
    assert_eq!(problems[0].problem, Problem::DateInFuture);

    // Elder 1 died on 2026-11-20: the import applies the exit as the console does.
    let mut died = half.clone();
    died[1][date] = "2026-11-20".into();
    let outcome = import(&store, &cells(&died)).await.unwrap();
    assert_eq!((outcome.updated, outcome.unchanged), (1, 4));
    assert_eq!(outcome.changes[0].columns, ["退出原因", "退出日期"]);
    let elder = store.elder(1).await.unwrap().unwrap();
    assert_eq!((elder.left_on.as_deref(), elder.exit_reason.as_deref()), (Some("2026-11-20"), Some("died")));
    assert_eq!(store.device("jia-node").await.unwrap().unwrap().elder_id, None, "its devices released");
    assert_eq!(store.exits("2026-11-01", "2026-11-30").await.unwrap().len(), 1);
    // The same file again changes nothing; a file that says nothing of the
    // exit keeps it; one that changes it is refused.
    assert_eq!(import(&store, &cells(&died)).await.unwrap().unchanged, 5);
    assert_eq!(import(&store, &cells(&rows)).await.unwrap().unchanged, 5, "silence is not a re-entry");
    let mut moved = died.clone();
    moved[1][reason] = "迁出".into();
    let Err(ImportError::Rows(problems)) = import(&store, &cells(&moved)).await else { panic!("a changed exit") };
    assert_eq!(problems[0].problem, Problem::ExitChanged { on: "2026-11-20".into() });
    // A new elder cannot arrive as having left.
    let mut newcomer = township_ledger(6, "");
    newcomer.truncate(1);
    newcomer.push(township_ledger(6, "")[6].clone());
    newcomer[0].extend(["退出原因".to_string(), "退出日期".to_string()]);
    newcomer[1].extend(["迁出".to_string(), "2026-11-01".to_string()]);
    let Err(ImportError::Rows(problems)) = import(&store, &cells(&newcomer)).await else {
        panic!("a newcomer who left")
    };
    assert_eq!(problems[0].problem, Problem::NewElderLeft);
    // The export carries the exit.
    let again =
        sheet::read(&export(&store, sheet::Format::Csv).await, sheet::Format::Csv, &sheet::Limits::LEDGER).unwrap();
    assert_eq!((text(&again[1][reason]), text(&again[1][date])), ("死亡".to_string(), "2026-11-20".to_string()));
}

async fn an_emergency_contact_who_agreed_joins_the_call_list_from_the_ledger(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    import(&store, &cells(&township_ledger(3, ""))).await.unwrap();
    let text = |cell: &sheet::Cell| cell.text();
    let exported =
        sheet::read(&export(&store, sheet::Format::Csv).await, sheet::Format::Csv, &sheet::Limits::LEDGER).unwrap();
    let rows: Vec<Vec<String>> = exported.iter().map(|row| row.iter().map(text).collect()).collect();
    let column = |header: &str| rows[0].iter().position(|h| h == header).unwrap();
    let (contact, phone, consent) = (column("紧急联系人"), column("紧急联系人电话"), column("紧急联系人同意联系"));
    assert!(store.contacts(1).await.unwrap().is_empty());

    // A consent without the contact is refused; with it, the contact is on the call list.
    let mut agreed = rows.clone();
    agreed[1][contact] = String::new();
    agreed[1][phone] = String::new();
    agreed[1][consent] = "电话确认".into();
    let Err(ImportError::Rows(problems)) = import(&store, &cells(&agreed)).await else { panic!("a consent alone") };
    assert_eq!(problems[0].problem, Problem::ConsentWithoutContact);
    agreed[1][contact] = "王丽".into();
    agreed[1][phone] = "13904150011".into();
    let outcome = import(&store, &cells(&agreed)).await.unwrap();
    assert_eq!((outcome.updated, outcome.unchanged), (1, 2));
    let list = store.contacts(1).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].name.as_str(), list[0].relation.as_str(), list[0].phone.as_str(), list[0].consent.as_str()),
        ("王丽", "family", "13904150011", "电话确认")
    );
    // Again: nothing changes, nobody is added twice; silence keeps the consent.
    assert_eq!(import(&store, &cells(&agreed)).await.unwrap().unchanged, 3);
    let mut silent = agreed.clone();
    silent[1][consent] = String::new();
    assert_eq!(import(&store, &cells(&silent)).await.unwrap().unchanged, 3, "silence is not a withdrawal");
    assert_eq!(store.contacts(1).await.unwrap().len(), 1);
    // Without consent, an emergency contact is kept on the record but never called.
    let mut unasked = agreed.clone();
    unasked[2][contact] = "李强".into();
    unasked[2][phone] = "13904150022".into();
    import(&store, &cells(&unasked)).await.unwrap();
    assert!(store.contacts(2).await.unwrap().is_empty());
    // The export carries the consent of whoever is on the call list.
    let again =
        sheet::read(&export(&store, sheet::Format::Csv).await, sheet::Format::Csv, &sheet::Limits::LEDGER).unwrap();
    assert_eq!((text(&again[1][consent]), text(&again[2][consent])), ("电话确认".to_string(), String::new()));
}
