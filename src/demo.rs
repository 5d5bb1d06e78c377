//! `anxin demo`: everything at once on a temporary data folder, to look at.
//!
//! A district of three townships (the `ledger sample` generator), a user of
//! each role, homes simulated live and paired with elders, and within a
//! minute a smoke alarm, an inactive elder and a dead sensor on the board.
//! Nothing is faked past the devices: the smoke alarm comes from a simulated
//! node; the inactive elder's home has 13 quiet hours of history, committed
//! through the ingest pipeline with their own receive times before `serve`
//! starts, and the rules find the silence as they would; the dead sensor's
//! node dies and its Last Will says so.

use std::time::Duration;

use anxin_domain::access::{Region, Role};
use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::ledger::{self, sheet};
use anxin_gateway::ingest::{check, commit_batch};
use anxin_simulator::{Scenario, SimulateOptions};
use anxin_store::{Database, Store, now_ms};
use anyhow::Context;

use crate::cli::DemoArgs;
use crate::output::out;
use crate::run::App;
use crate::settings::Settings;

/// Home 1's node raises a smoke alarm this long after the start.
const SMOKE_AFTER: Duration = Duration::from_secs(30);
/// Home 2's elder: quiet this long before the demo starts.
const QUIET_HOURS: i64 = 13;
/// The simulation's speed: a simulated minute a real second.
const SPEED: f64 = 60.0;

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.homes >= 3, "--homes must be at least 3 (smoke, inactivity and a dead sensor)");
    anyhow::ensure!(args.elders >= args.homes, "--elders must be at least --homes");
    let folder = std::env::temp_dir().join(format!("anxin-demo-{}", std::process::id()));
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let result = run(&args, &folder).await;
    let _ = std::fs::remove_dir_all(&folder);
    result
}

async fn run(args: &DemoArgs, folder: &std::path::Path) -> anyhow::Result<()> {
    let store = Store::open(&Database::in_data_dir(folder)).await?;
    let now = now_ms();
    let policy = AlertPolicy::default();

    // A user of each role; the visitor is 探访责任人 of every fifth elder.
    let county = anxin_simulator::ledger::COUNTY;
    let region = vec![Region::parse(county)?];
    let mut sign_ins = Vec::new();
    for (name, role, regions) in [
        ("admin", Role::Admin, Vec::new()),
        ("oncall", Role::Oncall, region.clone()),
        ("visitor", Role::Visitor, region.clone()),
        ("official", Role::Official, region.clone()),
    ] {
        let password = anxin_domain::access::one_time_password();
        store.add_user(name, role, &regions, &password, now).await?;
        sign_ins.push((name, role, password));
    }

    // The district: three townships of made-up elders, imported as a ledger would be.
    let rows = anxin_simulator::ledger::township_ledger(args.elders, "visitor");
    let cells =
        sheet::read(&sheet::write(&rows, sheet::Format::Csv, "台账")?, sheet::Format::Csv, &sheet::Limits::LEDGER)?;
    let visitors = store.visitor_names().await?;
    let district = ledger::read(&cells, policy.today(), &visitors)
        .map_err(|problems| anyhow::anyhow!("the sample ledger does not read back: {problems:?}"))?;
    store.import_ledger(&district, "demo", now).await.map_err(|error| anyhow::anyhow!("{error:?}"))?;
    let elders = store.elders().await?;

    // Homes 1…N paired with the first N elders: now, and home 2 when its history begins.
    let options = SimulateOptions { id_prefix: "demo".into(), ..SimulateOptions::default() };
    let devices: Vec<String> = (1..=args.homes).map(|home| options.device_id(home)).collect();
    let start = now - QUIET_HOURS * 3_600_000;
    for (home, (device, elder)) in devices.iter().zip(&elders).enumerate() {
        store.pair_device(device, elder.id, if home == 1 { start } else { now }).await?;
    }
    let credentials = crate::identities::provision_simulated(&store, &devices).await?;

    // Home 2: 13 quiet hours. A movement, then summaries every 5 minutes with none.
    let quiet = &devices[1];
    let mut history = Vec::new();
    for (seq, at) in (start..now).step_by(300_000).enumerate() {
        let motion = u32::from(seq == 0);
        let payload = format!(
            r#"{{"v":1,"boot":1,"seq":{seq},"up":{},"interval_s":300,"motion":{motion},"door_opens":0,"battery":87,"rssi":-61,"temp_dc":215}}"#,
            seq * 300
        );
        history.push((check(&format!("anxin/v1/dev/{quiet}/summary"), payload.as_bytes()), at));
    }
    for batch in history.chunks(64) {
        commit_batch(&store, &policy, batch).await?;
    }
    store.close().await;

    // Everything `anxin serve` runs, on this folder.
    let settings = Settings { http_listen: args.http_listen, ..Settings::for_data_dir(folder) };
    let app = App::build(&settings).await?;
    let mqtt = app.mqtt.context("the embedded broker")?;

    out!("anxin demo: the console is on http://{}", app.http);
    out!("  a district of {} elders in three townships of {county}, on {}", args.elders, folder.display());
    out!(
        "  {} homes simulated live ({} to {}), a simulated minute a second",
        args.homes,
        devices[0],
        devices[args.homes - 1]
    );
    out!("  on the board within a minute:");
    out!("    smoke      {} ({}) raises a smoke alarm after {} s", devices[0], elders[0].name, SMOKE_AFTER.as_secs());
    out!("    inactivity {} ({}) has not moved for {QUIET_HOURS} hours", devices[1], elders[1].name);
    out!("    offline    {} ({})'s node dies after a few seconds", devices[2], elders[2].name);
    out!("  sign in as (one-time passwords: each asks for a new one at first sign-in):");
    for (name, role, password) in &sign_ins {
        out!("    {name:<9} {:<9} {password}", role.as_str());
    }
    out!("  Ctrl-C stops it and deletes the folder");

    let simulation = SimulateOptions {
        broker_host: mqtt.ip().to_string(),
        broker_port: mqtt.port(),
        homes: args.homes,
        duration: Duration::from_secs(24 * 3_600),
        speed: SPEED,
        scenarios: vec![
            format!("smoke:1@{}m", SMOKE_AFTER.as_secs()).parse::<Scenario>()?,
            "silent:2".parse()?,
            "offline:3@3m".parse()?,
        ],
        credentials: credentials.into_iter().collect(),
        ..options
    };
    simulation.validate()?;
    let simulated = tokio::spawn(anxin_simulator::run(simulation));
    app.run_until_stopped(crate::run::stop_signal()).await;
    simulated.abort();
    out!("anxin demo: stopped");
    Ok(())
}
