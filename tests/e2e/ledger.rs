//! `anxin ledger import|export`, `anxin visits rate` and `anxin elders leave|exits|reenter` from the
//! command line.

use anxin_domain::ledger::sheet::{Format, write};
use anxin_testkit::ledger::township_ledger;
use anxin_testkit::private_folder;

use crate::{anxin_at, text};

#[test]
fn a_township_ledger_is_imported_whole_or_not_at_all_and_exported_back() {
    let folder = private_folder("e2e-ledger");
    let data = folder.to_str().unwrap();
    let run = |args: &[&str]| anxin_at(data, args);
    let rows = township_ledger(200, "");
    let mut bad = rows.clone();
    bad[4][7] = "21060219450312123X".into();
    let bad_file = folder.join("bad.csv");
    std::fs::write(&bad_file, write(&bad, Format::Csv, "台账").unwrap()).unwrap();
    let refused = run(&["ledger", "import", bad_file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    let errors = text(&refused.stderr);
    assert!(
        errors.contains("line 5, 公民身份号码 \"21060219450312123X\": ends in X, but its check digit is 8"),
        "{errors}"
    );
    assert!(errors.contains("nothing imported: 1 problems"), "{errors}");
    assert!(text(&run(&["elders", "list"]).stdout).trim().lines().count() <= 1, "nothing written");

    let file = folder.join("township.xlsx");
    std::fs::write(&file, write(&rows, Format::Xlsx, "台账").unwrap()).unwrap();
    let imported = run(&["ledger", "import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    assert!(text(&imported.stdout).contains("200 new, 0 changed, 0 unchanged"), "{}", text(&imported.stdout));
    assert!(text(&imported.stdout).contains("columns left alone: 序号"));
    let again = run(&["ledger", "import", file.to_str().unwrap()]);
    assert!(text(&again.stdout).contains("0 new, 0 changed, 200 unchanged"), "{}", text(&again.stdout));

    let exported = folder.join("export.csv");
    let export = run(&["ledger", "export", exported.to_str().unwrap()]);
    assert!(text(&export.stdout).contains("exported 200 elders"), "{}", text(&export.stderr));
    let back = run(&["ledger", "import", exported.to_str().unwrap()]);
    assert!(text(&back.stdout).contains("200 unchanged"), "{}", text(&back.stdout));

    let rate = text(&run(&["visits", "rate"]).stdout);
    assert!(rate.contains("0 of 200 elders visited (0%)"), "{rate}");
    assert!(rate.contains("振兴区/站前街道") && rate.contains("not yet visited (200)"), "{rate}");
    let json: serde_json::Value =
        serde_json::from_str(&text(&run(&["visits", "rate", "--region", "振兴区/汤池镇", "--json"]).stdout)).unwrap();
    assert_eq!(json["registered"], 67);
    let bad_month = run(&["visits", "rate", "--month", "2026-13"]);
    assert!(text(&bad_month.stderr).contains("is not a month"));

    // Elder 1 dies today before anyone came: they leave the month's figures
    // and are listed apart; a re-entry today is refused (it must follow the exit).
    let left = run(&["elders", "leave", "1", "--reason", "died", "--by", "official-wang"]);
    assert!(text(&left.stdout).contains("left the programme on"), "{}", text(&left.stderr));
    let rate = text(&run(&["visits", "rate"]).stdout);
    assert!(rate.contains("0 of 199 elders visited (0%)"), "{rate}");
    assert!(rate.contains("left the programme this month before a visit, not counted (1)"), "{rate}");
    let exits = text(&run(&["elders", "exits"]).stdout);
    assert!(exits.contains("死亡") && exits.contains("recorded by official-wang"), "{exits}");
    let twice = run(&["elders", "leave", "1", "--reason", "moved"]);
    assert!(!twice.status.success() && text(&twice.stderr).contains("already left"), "{}", text(&twice.stderr));
    let bad_reason = run(&["elders", "leave", "2", "--reason", "vanished"]);
    assert!(text(&bad_reason.stderr).contains("is not one of died, moved"), "{}", text(&bad_reason.stderr));
    let early = run(&["elders", "reenter", "1"]);
    assert!(text(&early.stderr).contains("must come after the exit"), "{}", text(&early.stderr));

    // This month cannot be closed yet; last month can, once.
    let this_month = run(&["visits", "close", "--month", &this_month(), "--county", "振兴区"]);
    assert!(text(&this_month.stderr).contains("has not ended yet"), "{}", text(&this_month.stderr));
    let last = last_month();
    let closed = run(&["visits", "close", "--month", &last, "--county", "振兴区", "--by", "official-wang"]);
    assert!(text(&closed.stdout).contains("closed for 振兴区 by official-wang"), "{}", text(&closed.stderr));
    let rate = text(&run(&["visits", "rate", "--month", &last]).stdout);
    assert!(rate.contains("closed for 振兴区 by official-wang"), "{rate}");
    let reopened = run(&["visits", "reopen", "--month", &last, "--county", "振兴区", "--by", "official-wang"]);
    assert!(text(&reopened.stdout).contains("reopened for 振兴区"), "{}", text(&reopened.stderr));
    let _ = std::fs::remove_dir_all(folder);
}

#[test]
fn a_sample_ledger_is_written_and_imported() {
    let folder = private_folder("e2e-ledger-sample");
    let data = folder.to_str().unwrap();
    let file = folder.join("sample.csv");
    let wrote = anxin_at(data, &["ledger", "sample", file.to_str().unwrap(), "--elders", "12"]);
    assert!(text(&wrote.stdout).contains("12 made-up elders"), "{}", text(&wrote.stderr));
    let imported = anxin_at(data, &["ledger", "import", file.to_str().unwrap()]);
    assert!(text(&imported.stdout).contains("12 new"), "{}", text(&imported.stderr));

    let _ = std::fs::remove_dir_all(folder);
}

/// This month and the one before, on Anxin's day (+08:00).
fn this_month() -> String {
    anxin_domain::visits::Month::of(anxin_domain::alerts::policy::AlertPolicy::default().today()).to_string()
}

fn last_month() -> String {
    anxin_domain::visits::Month::of(anxin_domain::alerts::policy::AlertPolicy::default().today()).previous().to_string()
}
