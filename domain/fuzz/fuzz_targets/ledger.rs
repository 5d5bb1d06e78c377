//! A township's ledger file, as uploaded: arbitrary bytes read as `.xlsx`
//! (the first byte chooses) or `.csv`, within the ledger's limits, then
//! checked row by row. Nothing may panic, and nothing may allocate past the
//! limits (libFuzzer's memory limit turns that into a finding).

#![no_main]

use std::collections::HashSet;

use anxin_domain::ledger::{self, sheet};
use libfuzzer_sys::fuzz_target;

/// libFuzzer's hook aborts on any panic, even one that is caught. calamine's
/// panics on malformed files (an overflowing cell reference, found here) are
/// caught by `sheet::read` and turned into "malformed": let those unwind to
/// it, and abort on every other, which is a finding in our code.
fn let_calamine_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let libfuzzer = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|at| at.file().contains("/calamine-")) {
                libfuzzer(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_calamine_panics_unwind();
    let Some((choice, bytes)) = data.split_first() else { return };
    let format = if choice % 2 == 0 { sheet::Format::Xlsx } else { sheet::Format::Csv };
    let Ok(rows) = sheet::read(bytes, format, &sheet::Limits::LEDGER) else { return };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    let visitors: HashSet<String> = ["visitor".to_string()].into();
    if let Ok(read) = ledger::read(&rows, today, &visitors) {
        // What reads back writes out and reads back the same.
        let rows: Vec<ledger::LedgerRow> = read.rows.into_iter().map(|(_, row)| row).collect();
        let written = sheet::write(&ledger::sheet_rows(&rows), sheet::Format::Csv, "台账").unwrap();
        let again = sheet::read(&written, sheet::Format::Csv, &sheet::Limits::LEDGER).unwrap();
        let reread = ledger::read(&again, today, &visitors).expect("a ledger written by Anxin reads back");
        let reread: Vec<ledger::LedgerRow> = reread.rows.into_iter().map(|(_, row)| row).collect();
        assert_eq!(reread.len(), rows.len());
    }
});
