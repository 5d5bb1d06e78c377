//! `anxin bench ledger`: a township's ledger of 5,000 elders through Anxin
//! on a real SQLite store — checking the file, importing it into an empty
//! registry, importing it again unchanged, exporting it — and the
//! visit-rate page over those elders. Each step is reported beside reading
//! and checking the same file (no database) in the same run, and the rate
//! page beside `/password` through the same router, so the figures read as
//! ratios on any machine.

use std::time::{Duration, Instant};

use anxin_domain::access::Role;
use anxin_domain::ledger::{self, sheet};
use anxin_store::{Database, Store, now_ms};

use super::console::{measure, ms, signed_in_console};
use crate::out;

#[derive(Debug, clap::Args)]
pub struct BenchLedgerArgs {
    /// Elders in the ledger, spread over three townships
    #[arg(long, default_value_t = 5_000)]
    pub elders: usize,
    /// Requests measured on the visit-rate page
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
}

fn ratio(step: Duration, baseline: Duration) -> String {
    format!("{:.1}×", step.as_secs_f64() / baseline.as_secs_f64().max(1e-9))
}

pub async fn ledger(args: BenchLedgerArgs) -> anyhow::Result<()> {
    let folder = std::env::temp_dir().join(format!("anxin-bench-ledger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder)?;
    let store = Store::open(&Database::in_data_dir(&folder)).await?;
    let now = now_ms();
    let policy = std::sync::Arc::new(anxin_domain::alerts::policy::AlertPolicy::default());
    let today = policy.today();
    let rows = anxin_simulator::ledger::township_ledger(args.elders, "");
    let xlsx = sheet::write(&rows, sheet::Format::Xlsx, "台账")?;
    out!("a ledger of {} elders: {} kB as .xlsx", args.elders, xlsx.len() / 1_000);

    let visitors = store.visitor_names().await?;
    let started = Instant::now();
    let cells = sheet::read(&xlsx, sheet::Format::Xlsx, &sheet::Limits::LEDGER)?;
    let checked = ledger::read(&cells, today, &visitors)
        .map_err(|problems| anyhow::anyhow!("the sample ledger has {} problems", problems.len()))?;
    let baseline = started.elapsed();

    let started = Instant::now();
    let first = store.import_ledger(&checked, "bench", now).await?;
    let import = started.elapsed();
    anyhow::ensure!(first.created == args.elders, "imported {first:?}");
    let started = Instant::now();
    let again = store.import_ledger(&checked, "bench", now).await?;
    let reimport = started.elapsed();
    anyhow::ensure!(again.unchanged == args.elders, "re-imported {again:?}");
    let started = Instant::now();
    let out = ledger::sheet_rows(&store.ledger().await?);
    let exported = sheet::write(&out, sheet::Format::Xlsx, "台账")?;
    let export = started.elapsed();

    out!("reading and checking the file (baseline, no database): {}", ms(baseline));
    out!("importing into an empty registry:   {:>10}  {} of the baseline", ms(import), ratio(import, baseline));
    out!("importing the same file again:      {:>10}  {} (nothing written)", ms(reimport), ratio(reimport, baseline));
    out!("exporting as .xlsx ({} kB):        {:>10}  {}", exported.len() / 1_000, ms(export), ratio(export, baseline));

    let (router, cookie) = signed_in_console(&store, &policy, "bench-official", Role::Official, now).await?;
    let base = measure(&router, &cookie, "/password", args.requests).await?;
    let rate = measure(&router, &cookie, "/rate", args.requests).await?;
    out!(
        "visit-rate page over {} elders (six months of figures, the unvisited listed): {} kB, {} kB gzipped, \
         p50 {}, p95 {} ({} of /password's p50 {})",
        args.elders,
        rate.bytes / 1_000,
        rate.gzipped / 1_000,
        ms(rate.percentile(50)),
        ms(rate.percentile(95)),
        ratio(rate.percentile(50), base.percentile(50)),
        ms(base.percentile(50)),
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}
