//! Scriptable administration: devices, elders, events. Each works against
//! the same `--data-dir` / `--database` as `serve`, while it runs.

use std::time::Duration;

use anxin_domain::access::{Region, Role};
use anxin_domain::alerts::Outcome;
use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::alerts::rules::{day_start, local_day};
use anxin_domain::enrolment::{Exit, ExitReason};
use anxin_domain::registry::{ElderForm, left_behind_recheck_due};
use anxin_store::{AlertFilter, AlertRecord, MessageCursor, MessageRecord, RegionFilter, now_ms};
use anyhow::{Context, anyhow};

use crate::cli::{
    AlertsCommand, ContactsCommand, DevicesCommand, DutyCommand, EldersCommand, EventsCommand, LedgerCommand,
    TokensCommand, UsersCommand, VisitsCommand, WatchCommand,
};
use crate::output::out;
use crate::run::open_store;
use crate::settings::Settings;

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// A moment in the homes' local time.
fn local_time(ms: i64, policy: &AlertPolicy) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.with_timezone(&policy.utc_offset).format("%Y-%m-%d %H:%M").to_string())
}

/// The local day number of a `YYYY-MM-DD` date.
fn parse_day(text: &str, flag: &str) -> anyhow::Result<i64> {
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| anyhow!("{flag} {text:?} is not a date; use YYYY-MM-DD"))?;
    Ok(i64::from(chrono::Datelike::num_days_from_ce(&date)) - 719_163)
}

/// A visitor's kind by its code or the plan's word.
fn visitor_kind(text: &str) -> anyhow::Result<anxin_domain::visits::VisitorKind> {
    use anxin_domain::visits::VisitorKind;
    VisitorKind::parse(text).ok_or_else(|| {
        let codes: Vec<&str> = VisitorKind::ALL.iter().map(|k| k.code()).collect();
        anyhow!("{text:?} is not a visitor kind: use one of {}", codes.join(", "))
    })
}

/// `--month YYYY-MM`, this month without one.
fn parse_month(text: Option<&str>, policy: &AlertPolicy) -> anyhow::Result<anxin_domain::visits::Month> {
    use anxin_domain::visits::Month;
    match text {
        None => Ok(Month::of(policy.today())),
        Some(text) => Month::parse(text).ok_or_else(|| anyhow!("{text:?} is not a month: use YYYY-MM")),
    }
}

fn parse_date(text: &str, flag: &str) -> anyhow::Result<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| anyhow!("{flag} {text:?} is not a date; use YYYY-MM-DD"))
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

pub async fn devices(settings: &Settings, command: DevicesCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        DevicesCommand::List { unclaimed, json } => {
            let devices = store.devices(unclaimed).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&devices)?);
            } else if devices.is_empty() {
                out!("{}", if unclaimed { "no unclaimed devices" } else { "no devices" });
            } else {
                let on_broker: std::collections::HashMap<String, bool> = store
                    .broker_identities(Some(anxin_domain::identity::IdentityKind::Device))
                    .await?
                    .into_iter()
                    .map(|identity| (identity.name, identity.revoked_at.is_none()))
                    .collect();
                out!(
                    "{:<24} {:<11} {:>6} {:<8} {:<24} {:>8} {:>7} {:>5} {:>8}",
                    "DEVICE",
                    "BROKER",
                    "ELDER",
                    "STATE",
                    "LAST SEEN",
                    "MESSAGES",
                    "BATTERY",
                    "RSSI",
                    "TEMP °C"
                );
                for d in devices {
                    let broker = match on_broker.get(&d.device_id) {
                        Some(true) => "provisioned",
                        Some(false) => "revoked",
                        None => "-",
                    };
                    let state = if d.online { "online" } else { "offline" };
                    let temp = d.temp_dc.map(|t| format!("{:.1}", t as f64 / 10.0));
                    out!(
                        "{:<24} {:<11} {:>6} {:<8} {:<24} {:>8} {:>7} {:>5} {:>8}",
                        d.device_id,
                        broker,
                        or_dash(d.elder_id),
                        state,
                        time(d.last_seen),
                        d.message_count,
                        d.battery.map_or_else(|| "-".into(), |b| format!("{b}%")),
                        or_dash(d.rssi),
                        or_dash(temp)
                    );
                }
            }
        }
        DevicesCommand::Pair { device_id, elder } => {
            anxin_gateway::protocol::DeviceId::parse(&device_id)
                .with_context(|| format!("{device_id:?} is not a device id"))?;
            store.pair_device(&device_id, elder, now_ms()).await?;
            out!("paired {device_id} with elder {elder}");
            let provisioned = store.broker_identity(&device_id).await?.is_some_and(|known| known.revoked_at.is_none());
            if !provisioned {
                out!(
                    "note: {device_id} has no secret on the broker yet; it cannot connect until \
                     `anxin devices provision {device_id}` (or `devices import`) gives it one"
                );
            }
        }
        DevicesCommand::Provision { device_ids, out } => {
            crate::identities::provision(&store, &device_ids, out.as_deref()).await?;
        }
        DevicesCommand::Import { file } => crate::identities::import(&store, &file).await?,
        DevicesCommand::Revoke { device_id } => {
            crate::identities::revoke(&store, &device_id, anxin_domain::identity::IdentityKind::Device).await?;
        }
        DevicesCommand::Export { mosquitto } => crate::identities::export_mosquitto(&store, &mosquitto).await?,
    }
    store.close().await;
    Ok(())
}

pub async fn elders(settings: &Settings, command: EldersCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let policy = settings.policy.clone();
    match command {
        EldersCommand::Add(args) => {
            let form = ElderForm {
                name: &args.name,
                county: &args.county,
                township: &args.township,
                village: &args.village,
                address: &args.address,
                phone: args.phone.as_deref(),
                emergency_contact: args.emergency_contact.as_deref(),
                emergency_phone: args.emergency_phone.as_deref(),
                categories: args.categories.as_deref(),
                inactivity_hours: args.inactivity_hours,
                citizen_id: args.citizen_id.as_deref(),
                disability_cert: args.disability_cert.as_deref(),
                lives_at_registered: Some(!args.not_at_registered_address),
                left_behind_since: args.left_behind_since.as_deref(),
            };
            let elder = store.add_elder(&form.check_on(policy.today())?, now_ms()).await?;
            out!("added elder {}: {}", elder.id, elder.name);
        }
        EldersCommand::List { json } => {
            let elders = store.elders().await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&elders)?);
            } else if elders.is_empty() {
                out!("no elders");
            } else {
                for e in elders {
                    out!(
                        "{:>5}  {}  {}/{}/{}  {}  phone {}  emergency {} {}",
                        e.id,
                        e.name,
                        e.county,
                        e.township,
                        e.village,
                        e.address,
                        or_dash(e.phone),
                        or_dash(e.emergency_contact),
                        or_dash(e.emergency_phone)
                    );
                }
            }
        }
        EldersCommand::Away { elder_id, until, reason, by } => {
            let last_day = parse_day(&until, "--until")?;
            let now = now_ms();
            if last_day < local_day(now, &policy) {
                anyhow::bail!("--until {until} is in the past");
            }
            let ends_at = day_start(last_day + 1, &policy);
            let absence = store.mark_away(elder_id, ends_at, &reason, &by, now).await?;
            out!(
                "elder {elder_id} away until {} ({}): alerts other than smoke and help are paused",
                local_time(absence.ends_at, &policy),
                absence.reason
            );
        }
        EldersCommand::Assign { elder_id, visitor, by } => {
            store.assign_visitor(elder_id, &visitor, &by, now_ms()).await?;
            out!("{visitor} is the visitor responsible for elder {elder_id}");
        }
        EldersCommand::Unassigned => {
            let ids = store.elders_without_visitor().await?;
            if ids.is_empty() {
                out!("every elder has a visitor");
            }
            for id in ids {
                if let Some(e) = store.elder(id).await? {
                    out!("{:>5}  {}  {}/{}/{}", e.id, e.name, e.county, e.township, e.village);
                }
            }
        }
        EldersCommand::Recheck => {
            let today = policy.today();
            let due: Vec<_> = store
                .elders()
                .await?
                .into_iter()
                .filter(|e| e.left_on.is_none())
                .filter_map(|e| {
                    let since = e.left_behind_since.as_deref()?;
                    let day = chrono::NaiveDate::parse_from_str(since, "%Y-%m-%d").ok()?;
                    left_behind_recheck_due(day, today).then_some((e, day))
                })
                .collect();
            if due.is_empty() {
                out!("no left-behind elder is due a re-check");
            }
            for (e, since) in due {
                out!("{:>5}  {}  {}/{}/{}  children away since {since}", e.id, e.name, e.county, e.township, e.village);
            }
        }
        EldersCommand::Leave { elder_id, reason, on, by } => {
            let reason = ExitReason::parse(&reason).ok_or_else(|| {
                anyhow!("--reason {reason:?} is not one of died, moved, institution, ineligible, declined")
            })?;
            let on = on.map_or_else(|| Ok(policy.today()), |text| parse_date(&text, "--on"))?;
            let exit = Exit { reason, on };
            let effects = store.record_exit(elder_id, exit, &by, now_ms(), policy.utc_offset).await?;
            out!(
                "elder {elder_id} left the programme on {on} ({}): {} device(s) released, {} alert(s) resolved",
                reason.label(),
                effects.devices_released.len(),
                effects.alerts_resolved.len()
            );
        }
        EldersCommand::Reenter { elder_id, on, by } => {
            let on = on.map_or_else(|| Ok(policy.today()), |text| parse_date(&text, "--on"))?;
            store.reenter(elder_id, on, &by, now_ms(), policy.utc_offset).await?;
            out!("elder {elder_id} is in the programme again from {on}: pair their devices again to watch the home");
        }
        EldersCommand::Exits { month, json } => {
            let month = parse_month(month.as_deref(), &policy)?;
            let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
            let exits = store.exits(&day(month.first_day()), &day(month.last_day())).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&exits)?);
            } else if exits.is_empty() {
                out!("nobody left the programme in {month}");
            } else {
                for e in exits {
                    let reason =
                        ExitReason::parse(&e.exit_reason).map_or_else(|| e.exit_reason.clone(), |r| r.label().into());
                    out!(
                        "{:>5}  {}  {}/{}/{}  left {}  {}  recorded by {}",
                        e.elder_id,
                        e.name,
                        e.county,
                        e.township,
                        e.village,
                        e.exited_on,
                        reason,
                        e.recorded_by
                    );
                }
            }
        }
        EldersCommand::Back { elder_id } => {
            let ended = store.end_absence(elder_id, now_ms()).await?;
            if ended == 0 {
                out!("elder {elder_id} was not marked away");
            } else {
                out!("elder {elder_id} is back: watched as usual from now");
            }
        }
    }
    store.close().await;
    Ok(())
}

fn print_alert_line(alert: &AlertRecord, policy: &AlertPolicy) {
    let level = if alert.level > 0 { format!(" escalated×{}", alert.reminders) } else { String::new() };
    out!(
        "{:>6}  {:<12} {:<8} {:<14} {}  elder {} {}  {}{}",
        alert.id,
        alert.status,
        alert.severity,
        alert.kind,
        local_time(alert.opened_at, policy),
        alert.elder_id,
        alert.elder_name,
        alert.detail,
        level
    );
}

pub async fn alerts(settings: &Settings, command: AlertsCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let policy = settings.policy.clone();
    match command {
        AlertsCommand::List { open, elder, json } => {
            let alerts = store
                .alerts(&AlertFilter { unresolved_only: open, elder_id: elder, limit: 1_000, ..AlertFilter::default() })
                .await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&alerts)?);
            } else if alerts.is_empty() {
                out!("{}", if open { "no open alerts" } else { "no alerts" });
            } else {
                for alert in &alerts {
                    print_alert_line(alert, &policy);
                }
            }
        }
        AlertsCommand::Show { id, json } => {
            let alert = store.alert(id).await?.ok_or_else(|| anyhow!("there is no alert {id}"))?;
            let history = store.alert_history(id).await?;
            let chain = store.chain(id).await?;
            let attempts = store.responder_messages(id).await?;
            if json {
                let whole =
                    serde_json::json!({"alert": alert, "history": history, "chain": chain, "attempts": attempts});
                out!("{}", serde_json::to_string_pretty(&whole)?);
            } else {
                print_alert_line(&alert, &policy);
                for event in history {
                    out!(
                        "        {}  {:<12} {:<10} {}",
                        local_time(event.at, &policy),
                        event.action,
                        event.actor.unwrap_or_default(),
                        event.detail.unwrap_or_default()
                    );
                }
                if let Some(chain) = chain {
                    out!("    responder chain: {} (step {} of {})", chain.state.code(), chain.step + 1, chain.steps);
                }
                for m in attempts {
                    let at = |ms: Option<i64>| ms.map(|ms| local_time(ms, &policy)).unwrap_or_else(|| "-".into());
                    let mut answers = Vec::new();
                    for (word, ms) in
                        [("accepted", m.accepted_at), ("arrived", m.arrived_at), ("declined", m.declined_at)]
                    {
                        if let Some(ms) = ms {
                            answers.push(format!("{word} {}", local_time(ms, &policy)));
                        }
                    }
                    let provider = match m.status.as_str() {
                        "sent" => format!(
                            "sent {}{}",
                            at(m.sent_at),
                            m.provider_ref.map(|r| format!(" ({r})")).unwrap_or_default()
                        ),
                        "queued" if m.attempts > 0 => {
                            format!("retrying ({} failed: {})", m.attempts, m.last_error.unwrap_or_default())
                        }
                        "failed" => format!("failed: {}", m.last_error.unwrap_or_default()),
                        other => other.to_string(),
                    };
                    out!(
                        "        {}  step {}  sms{} to {} ({}) {}  {}  {}",
                        at(m.queued_at),
                        m.step + 1,
                        if m.purpose == "late" { " (late arrival)" } else { "" },
                        m.name,
                        m.relation,
                        m.phone,
                        provider,
                        answers.join(", ")
                    );
                }
            }
        }
        AlertsCommand::Ack { id, by } => {
            let alert = store.acknowledge_alert(id, &by, now_ms()).await?;
            out!(
                "alert {id} acknowledged by {} after {} s",
                alert.acknowledged_by.unwrap_or_default(),
                alert.ack_ms.unwrap_or_default() / 1_000
            );
        }
        AlertsCommand::Resolve { id, by, outcome, note } => {
            let choices = Outcome::FOR_STAFF.map(Outcome::as_str).join(", ");
            let outcome = Outcome::parse_for_staff(&outcome)
                .ok_or_else(|| anyhow!("--outcome {outcome:?} is not one of: {choices}"))?;
            let alert = store.resolve_alert(id, &by, outcome, &note, now_ms()).await?;
            out!("alert {id} resolved by {}: {}", alert.resolved_by.unwrap_or_default(), outcome.as_str());
        }
        AlertsCommand::Stats { county, township, village, severity, from, to, json } => {
            let severity = severity
                .map(|severity| {
                    anxin_domain::alerts::Severity::parse(&severity).ok_or_else(|| {
                        anyhow::anyhow!("--severity {severity:?} is not one of: critical, warning, notice")
                    })
                })
                .transpose()?;
            let now = now_ms();
            let today = local_day(now, &policy);
            let first = from.as_deref().map(|d| parse_day(d, "--from")).transpose()?.unwrap_or(today - 29);
            let last = to.as_deref().map(|d| parse_day(d, "--to")).transpose()?.unwrap_or(today);
            if last < first {
                anyhow::bail!("--to is before --from");
            }
            let region = RegionFilter { county, township, village };
            let (from_ms, to_ms) = (day_start(first, &policy), day_start(last + 1, &policy));
            let stats = store.ack_stats(&region, severity, from_ms, to_ms).await?;
            let figures = store.response_figures(&region, from_ms, to_ms).await?;
            if json {
                let mut whole = serde_json::to_value(stats)?;
                whole["townships"] = serde_json::to_value(&figures)?;
                out!("{}", serde_json::to_string_pretty(&whole)?);
            } else {
                let share = |s: Option<f64>| s.map_or_else(|| "-".into(), |s| format!("{:.1}%", s * 100.0));
                out!(
                    "{} alerts, {} acknowledged; within 60 s: {} (target 97.5%), within 180 s: {} (target 99%)",
                    stats.alerts,
                    stats.acknowledged,
                    share(stats.share_60s()),
                    share(stats.share_180s())
                );
                let minutes =
                    |ms: Option<i64>| ms.map_or_else(|| "-".into(), |ms| format!("{:.1} min", ms as f64 / 60_000.0));
                for f in figures {
                    out!(
                        "  {}/{}: {} alerts; responder chain {}: accepted {} (median {}, 90% {}), arrived {} (median {}, 90% {}), no responder {}",
                        f.county,
                        f.township,
                        f.ack.alerts,
                        f.chains,
                        f.accepted,
                        minutes(f.accept_median_ms),
                        minutes(f.accept_p90_ms),
                        f.arrived,
                        minutes(f.arrive_median_ms),
                        minutes(f.arrive_p90_ms),
                        f.no_responder
                    );
                }
            }
        }
    }
    store.close().await;
    Ok(())
}

pub async fn visits(settings: &Settings, command: VisitsCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let policy = settings.policy.clone();
    let (elder, days, json) = match command {
        VisitsCommand::List { elder, days, json } => (elder, days, json),
        VisitsCommand::Rate { month, region, json } => return visit_rate(&store, &policy, month, region, json).await,
        VisitsCommand::Close { month, county, by } => {
            let month = parse_month(Some(&month), &policy)?;
            let closing = store.close_month(&county, month, &by, now_ms(), policy.utc_offset).await?;
            let rate = anxin_domain::visits::VisitRate::of(
                month,
                policy.today(),
                store.month_elders(month, policy.utc_offset).await?,
                Some(&Region { county: county.clone(), township: None, village: None }),
            );
            out!(
                "{month} closed for {county} by {} at {}: {} of {} elders visited ({})",
                closing.closed_by,
                local_time(closing.closed_at, &policy),
                rate.total.visited,
                rate.total.registered,
                rate.total.percent()
            );
            return Ok(());
        }
        VisitsCommand::Reopen { month, county, by } => {
            let month = parse_month(Some(&month), &policy)?;
            store.reopen_month(&county, month, &by, now_ms()).await?;
            out!("{month} reopened for {county}: its figures are computed afresh, late visits (补录) included");
            return Ok(());
        }
    };
    if store.elder(elder).await?.is_none() {
        anyhow::bail!("there is no elder with id {elder}");
    }
    if days {
        let days = store.days(elder).await?;
        if json {
            out!("{}", serde_json::to_string_pretty(&days)?);
        } else if days.is_empty() {
            out!("no closed days yet for elder {elder}");
        } else {
            for day in days {
                out!(
                    "{}  {:<7} active {:>2} h, sensors {:>2} h  {}",
                    day.day,
                    if day.counted { "counts" } else { "-" },
                    day.active_hours,
                    day.reported_hours,
                    day.reason
                );
            }
        }
    } else {
        let visits = store.visits(elder).await?;
        if json {
            out!("{}", serde_json::to_string_pretty(&visits)?);
        } else if visits.is_empty() {
            out!("no visits recorded for elder {elder}");
        } else {
            for visit in visits {
                out!(
                    "{}  {:<7} {}  {}  {}",
                    visit.day,
                    visit.mode,
                    local_time(visit.visited_at, &policy),
                    visit.visitor,
                    visit.summary.unwrap_or_default()
                );
            }
        }
    }
    store.close().await;
    Ok(())
}

pub async fn watch(settings: &Settings, command: WatchCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let policy = settings.policy.clone();
    match command {
        WatchCommand::Start { county, township, village, until, reason, by } => {
            let now = now_ms();
            let last_day = parse_day(&until, "--until")?;
            let region = RegionFilter { county: Some(county), township, village };
            let watch =
                store.start_heightened_watch(&region, day_start(last_day + 1, &policy), &reason, &by, now).await?;
            out!(
                "heightened watch {} over {}{}{} until {}: {}",
                watch.id,
                watch.county,
                watch.township.map(|t| format!("/{t}")).unwrap_or_default(),
                watch.village.map(|v| format!("/{v}")).unwrap_or_default(),
                local_time(watch.ends_at, &policy),
                watch.reason
            );
        }
        WatchCommand::List => {
            let watches = store.heightened_watches(now_ms()).await?;
            if watches.is_empty() {
                out!("no heightened watch");
            }
            for watch in watches {
                out!(
                    "{:>4}  {}{}{}  {} – {}  {}  (by {})",
                    watch.id,
                    watch.county,
                    watch.township.map(|t| format!("/{t}")).unwrap_or_default(),
                    watch.village.map(|v| format!("/{v}")).unwrap_or_default(),
                    local_time(watch.starts_at, &policy),
                    local_time(watch.ends_at, &policy),
                    watch.reason,
                    watch.created_by
                );
            }
        }
    }
    store.close().await;
    Ok(())
}

fn print_message(message: &MessageRecord) {
    out!("{}  {:<24} {}", time(message.received_at), message.device_id, message.payload);
}

/// How long before it is committed a message may have been stamped received.
const IN_FLIGHT_MS: i64 = 5_000;

pub async fn events(settings: &Settings, command: EventsCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let EventsCommand::Tail { device, last } = command;
    let mut cursor = MessageCursor::default();
    // Taken before the first look, so that a message received meanwhile is
    // followed, not lost between the two.
    let started = now_ms();
    for message in store.latest_messages(device.as_deref(), last.max(0)).await? {
        print_message(&message);
        cursor = MessageCursor {
            received_at: message.received_at,
            device_id: message.device_id,
            boot: message.boot,
            seq: message.seq,
        };
    }
    if cursor == MessageCursor::default() {
        // Nothing shown yet: follow from the first look rather than replaying
        // history, with room for a message stamped then and committed after.
        cursor.received_at = started - IN_FLIGHT_MS;
    }
    loop {
        let page = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            page = store.messages_after(&cursor, device.as_deref(), 500) => page?,
        };
        for message in &page {
            print_message(message);
        }
        if let Some(last) = page.last() {
            cursor = MessageCursor {
                received_at: last.received_at,
                device_id: last.device_id.clone(),
                boot: last.boot,
                seq: last.seq,
            };
        } else {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }
    store.close().await;
    Ok(())
}

pub async fn users(settings: &Settings, command: UsersCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        UsersCommand::Add { name, role, regions, kind } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow!("--role {role:?} is not one of: admin, oncall, visitor, official"))?;
            let regions = regions.iter().map(|r| Region::parse(r)).collect::<Result<Vec<_>, _>>()?;
            let kind = kind.as_deref().map(visitor_kind).transpose()?;
            if kind.is_some() && role != Role::Visitor {
                anyhow::bail!("--kind is for visitors only");
            }
            let password = anxin_domain::access::one_time_password();
            let user = store.add_user(&name, role, &regions, &password, now_ms()).await?;
            if let Some(kind) = kind {
                store.set_visitor_kind(&name, kind, "anxin", now_ms()).await?;
            }
            out!("added {} ({}); one-time password: {password}", user.name, user.role);
            out!("it is shown once; the user must change it at first sign-in");
        }
        UsersCommand::Import { file, out } => import_users(&store, &file, &out).await?,
        UsersCommand::SetKind { name, kind } => {
            let kind = visitor_kind(&kind)?;
            store.set_visitor_kind(&name, kind, "anxin", now_ms()).await?;
            out!("{name} is a visitor of kind {} ({})", kind.code(), kind.label());
        }
        UsersCommand::Disable { name } => {
            store.set_user_disabled(&name, true, "anxin", now_ms()).await?;
            out!("disabled {name}: their sessions ended; their tokens and alert streams stop within seconds");
        }
        UsersCommand::Enable { name } => {
            store.set_user_disabled(&name, false, "anxin", now_ms()).await?;
            out!("enabled {name}");
        }
        UsersCommand::ResetPassword { name } => {
            let password = store.reset_password(&name, "anxin", now_ms()).await?;
            out!("{name}'s one-time password: {password}");
            out!("it is shown once; they must change it at their next sign-in");
        }
        UsersCommand::List { json } => {
            let users = store.users().await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&users)?);
            } else if users.is_empty() {
                out!("no users");
            } else {
                for user in users {
                    out!(
                        "{:>4}  {:<20} {:<9} {}{}",
                        user.id,
                        user.name,
                        user.role,
                        user.regions.join(", "),
                        if user.disabled { "  (disabled)" } else { "" }
                    );
                }
            }
        }
    }
    store.close().await;
    Ok(())
}

pub async fn audit(settings: &Settings, command: crate::cli::AuditCommand) -> anyhow::Result<()> {
    use crate::cli::AuditCommand;
    let store = open_store(settings).await?;
    match command {
        AuditCommand::Verify => {
            let verdict = store.verify_audit_log().await?;
            let from = verdict
                .from_checkpoint
                .map_or_else(|| "its start".into(), |id| format!("the checkpoint after entry {id}"));
            store.close().await;
            if let Some((id, why)) = verdict.broken {
                anyhow::bail!(
                    "the audit log is broken at entry {id}: {why} ({} entries from {from} hold)",
                    verdict.entries
                );
            }
            out!("the audit log holds: {} entries from {from}, each following the one before", verdict.entries);
            if let Some((id, hash)) = verdict.head {
                out!(
                    "head: entry {id} {hash} (keep it outside this machine: a later verify that reaches it with the same hash shows nothing before it was rewritten)"
                );
            }
        }
        AuditCommand::Prune { older_than_days } => {
            let now = now_ms();
            let removed =
                store.prune_audit_log(now - i64::from(older_than_days) * anxin_domain::time::DAY_MS, now).await?;
            store.close().await;
            out!("removed {removed} audit entries older than {older_than_days} days; a checkpoint keeps the chain");
        }
    }
    Ok(())
}

pub async fn tokens(settings: &Settings, command: TokensCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        TokensCommand::Issue { user, days } => {
            let now = now_ms();
            let token = store.issue_token(&user, now + i64::from(days) * anxin_domain::time::DAY_MS, now).await?;
            out!("{token}");
            eprintln!(
                "a bearer token for {user}, valid {days} days: shown once; send it as `Authorization: Bearer …` to /api/v1"
            );
        }
        TokensCommand::List { user, json } => {
            let tokens = store.tokens(user.as_deref()).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&tokens)?);
            } else if tokens.is_empty() {
                out!("no tokens");
            } else {
                let now = now_ms();
                for token in tokens {
                    let state = match (token.revoked_at, token.expires_at) {
                        (Some(at), _) => format!("revoked {}", time(at)),
                        (None, Some(at)) if at <= now => format!("expired {}", time(at)),
                        (None, Some(at)) => format!("expires {}", time(at)),
                        (None, None) => "never expires: revoke it".into(),
                    };
                    let used =
                        token.last_used_at.map_or_else(|| "never used".into(), |at| format!("used {}", time(at)));
                    out!("{}  {:<16} issued {}  {used}  {state}", token.id, token.user, time(token.created_at));
                }
            }
        }
        TokensCommand::Revoke { id } => {
            store.revoke_token(&id, "anxin", now_ms()).await?;
            out!("revoked token {id}");
        }
    }
    store.close().await;
    Ok(())
}

async fn visit_rate(
    store: &anxin_store::Store,
    policy: &AlertPolicy,
    month: Option<String>,
    region: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    use anxin_domain::visits::{RegionLevel, VisitRate};
    let today = policy.today();
    let month = parse_month(month.as_deref(), policy)?;
    let region = region.as_deref().map(Region::parse).transpose()?;
    let rate = VisitRate::of(month, today, store.month_elders(month, policy.utc_offset).await?, region.as_ref());
    let total = &rate.total;
    let by_township = rate.by(RegionLevel::Township);
    let unvisited: Vec<_> = rate.unvisited().collect();
    if json {
        let value = serde_json::json!({
            "month": month.to_string(),
            "registered": total.registered,
            "visited": total.visited,
            "rate": total.percent(),
            "days_left": rate.days_left,
            "by_township": by_township.iter().map(|(r, f)| serde_json::json!({
                "region": r, "registered": f.registered, "visited": f.visited, "rate": f.percent()
            })).collect::<Vec<_>>(),
            "unvisited": unvisited,
            "left_unvisited": rate.left_unvisited,
        });
        out!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    out!(
        "{month}: {} of {} elders visited ({}), {} days left",
        total.visited,
        total.registered,
        total.percent(),
        rate.days_left
    );
    for closing in store.closed_months(month).await? {
        out!("  closed for {} by {} at {}", closing.county, closing.closed_by, local_time(closing.closed_at, policy));
    }
    for (region, figures) in &by_township {
        out!("  {region:<24} {:>5} / {:<5} {}", figures.visited, figures.registered, figures.percent());
    }
    let late = store.late_visits(month).await?;
    if !late.is_empty() {
        out!("recorded after the month was closed (补录), counted only once it is reopened ({}):", late.len());
        for visit in late {
            out!("  {:>6}  {}  {}  {}  by {}", visit.elder_id, visit.name, visit.day, visit.mode, visit.recorded_by);
        }
    }
    if !unvisited.is_empty() {
        out!("not yet visited ({}):", unvisited.len());
        for elder in unvisited {
            out!("  {:>6}  {}  {} {} {}", elder.elder_id, elder.name, elder.county, elder.township, elder.village);
        }
    }
    if !rate.left_unvisited.is_empty() {
        out!("left the programme this month before a visit, not counted ({}):", rate.left_unvisited.len());
        for elder in &rate.left_unvisited {
            let left_on = elder.left_on.as_deref().unwrap_or_default();
            out!(
                "  {:>6}  {}  {} {} {}  left {left_on}",
                elder.elder_id,
                elder.name,
                elder.county,
                elder.township,
                elder.village
            );
        }
    }
    Ok(())
}

pub async fn ledger(settings: &Settings, command: LedgerCommand) -> anyhow::Result<()> {
    use anxin_domain::ledger::{self, sheet};
    let store = open_store(settings).await?;
    let policy = settings.policy.clone();
    let format_of = |path: &std::path::Path| {
        sheet::Format::of_file(&path.to_string_lossy())
            .ok_or_else(|| anyhow::anyhow!("{} is neither .xlsx nor .csv", path.display()))
    };
    match command {
        LedgerCommand::Import { file, by, dry_run } => {
            let format = format_of(&file)?;
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let rows = sheet::read(&bytes, format, &sheet::Limits::LEDGER)?;
            let today = policy.today();
            let visitors = store.visitor_names().await?;
            let on_record = store.ledger().await?;
            let problems = match ledger::read_over(&rows, today, &visitors, &on_record) {
                Ok(checked) => match if dry_run {
                    store.preview_ledger(&checked, &by, now_ms()).await
                } else {
                    store.import_ledger(&checked, &by, now_ms()).await
                } {
                    Ok(outcome) => {
                        for change in &outcome.changes {
                            match change.elder_id {
                                None => out!("line {}: new elder {}", change.line, change.name),
                                Some(id) => out!(
                                    "line {}: elder {id} {}: {}",
                                    change.line,
                                    change.name,
                                    change.columns.join(", ")
                                ),
                            }
                        }
                        out!(
                            "{} {}: {} new, {} changed, {} unchanged",
                            if dry_run { "would import (nothing saved)" } else { "imported" },
                            file.display(),
                            outcome.created,
                            outcome.updated,
                            outcome.unchanged
                        );
                        if !checked.ignored_columns.is_empty() {
                            out!("columns left alone: {}", checked.ignored_columns.join(", "));
                        }
                        for warning in &checked.warnings {
                            out!("to check: {warning}");
                        }
                        return Ok(());
                    }
                    Err(anxin_store::ImportError::Rows(problems)) => problems,
                    Err(anxin_store::ImportError::Store(error)) => return Err(error.into()),
                },
                Err(problems) => problems,
            };
            for problem in &problems {
                eprintln!("{problem}");
            }
            anyhow::bail!("nothing imported: {} problems in {}", problems.len(), file.display())
        }
        LedgerCommand::Sample { file, elders } => {
            let format = format_of(&file)?;
            let rows = anxin_simulator::ledger::township_ledger(elders, "");
            std::fs::write(&file, sheet::write(&rows, format, "台账")?)
                .with_context(|| format!("cannot write {}", file.display()))?;
            out!("wrote a sample ledger of {elders} made-up elders to {}", file.display());
            Ok(())
        }
        LedgerCommand::Export { file, by } => {
            let format = format_of(&file)?;
            let rows = ledger::sheet_rows(&store.ledger().await?);
            let count = rows.len() - 1;
            std::fs::write(&file, sheet::write(&rows, format, "台账")?)
                .with_context(|| format!("cannot write {}", file.display()))?;
            store.audit(now_ms(), &by, "ledger exported", None, Some(format.extension())).await?;
            out!("exported {count} elders to {}", file.display());
            Ok(())
        }
    }
}

pub async fn contacts(settings: &Settings, command: ContactsCommand) -> anyhow::Result<()> {
    use anxin_domain::alerts::AlertKind;
    use anxin_domain::responders::{ContactForm, Relation};
    let store = open_store(settings).await?;
    match command {
        ContactsCommand::List { elder, json } => {
            store.elder(elder).await?.ok_or_else(|| anyhow!("there is no elder {elder}"))?;
            let list = store.contacts(elder).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for c in list {
                    let hours = match (&c.available_from, &c.available_to) {
                        (Some(from), Some(to)) => format!("{from}-{to}"),
                        _ => "any time".into(),
                    };
                    let kinds = if c.kinds.is_empty() { "each kind's default".into() } else { c.kinds.join(",") };
                    out!(
                        "{:>3}. [{}] {} ({}) {}  {}  {}  consent: {}",
                        c.position,
                        c.id,
                        c.name,
                        c.relation,
                        c.phone,
                        hours,
                        kinds,
                        c.consent
                    );
                }
            }
        }
        ContactsCommand::Add { elder, name, relation, phone, from, to, kinds, consent, by } => {
            store.elder(elder).await?.ok_or_else(|| anyhow!("there is no elder {elder}"))?;
            let relations = Relation::ALL.iter().map(|r| r.code()).collect::<Vec<_>>().join(", ");
            let relation = Relation::parse(&relation)
                .ok_or_else(|| anyhow!("--relation {relation:?} is not one of: {relations}"))?;
            let kinds = kinds
                .iter()
                .map(|k| AlertKind::parse(k.trim()).ok_or_else(|| anyhow!("--kinds: {k:?} is not an alert kind")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let form = ContactForm {
                name: &name,
                relation: Some(relation),
                phone: &phone,
                from: from.as_deref(),
                to: to.as_deref(),
                kinds,
                consent: Some(&consent),
            };
            let (contact, consent) = form.check()?;
            let added = store.add_contact(elder, &contact, &consent, &by, now_ms()).await?;
            out!("contact {} added to elder {elder}'s call list at place {}", added.id, added.position);
        }
        ContactsCommand::Remove { elder, contact, by } => {
            store.remove_contact(elder, contact, &by, now_ms()).await?;
            out!("contact {contact} removed from elder {elder}'s call list");
        }
    }
    store.close().await;
    Ok(())
}

pub async fn duty(settings: &Settings, command: DutyCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let policy = settings.policy.clone();
    let local = |text: &str, flag: &str| {
        chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M")
            .ok()
            .and_then(|t| t.and_local_timezone(policy.utc_offset).single())
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| anyhow!("{flag} {text:?} is not a local time YYYY-MM-DDTHH:MM"))
    };
    match command {
        DutyCommand::List { county } => {
            let now = now_ms();
            for shift in store.duty_shifts(county.as_deref(), now - 12 * 3_600_000, now + 7 * 86_400_000).await? {
                let on = if shift.starts_at <= now && now < shift.ends_at { "  (on call now)" } else { "" };
                out!(
                    "[{}] {}  {}  {}  {} to {}{on}",
                    shift.id,
                    shift.county,
                    shift.person,
                    shift.phone,
                    local_time(shift.starts_at, &policy),
                    local_time(shift.ends_at, &policy)
                );
            }
        }
        DutyCommand::Add { county, person, phone, from, to, by } => {
            let phone = anxin_domain::registry::PhoneNumber::parse("--phone", &phone)?;
            let (from, to) = (local(&from, "--from")?, local(&to, "--to")?);
            anyhow::ensure!(to > from, "--to must be after --from");
            let shift = store.add_shift(&county, person.trim(), phone.as_str(), (from, to), &by, now_ms()).await?;
            out!("shift {} added: {} on call in {county}", shift.id, shift.person);
        }
        DutyCommand::Cancel { id, by } => {
            let shift = store.cancel_shift(id, &by, now_ms()).await?;
            out!("shift {id} ({} in {}) taken off the roster", shift.person, shift.county);
        }
    }
    store.close().await;
    Ok(())
}

/// One user of an import file, checked.
struct UserRow {
    name: String,
    role: Role,
    regions: Vec<Region>,
    kind: Option<anxin_domain::visits::VisitorKind>,
}

/// `anxin users import FILE --out PASSWORDS`: all rows checked, then all
/// added. `-` reads the CSV from standard input and writes the passwords to
/// standard output (what was added is then said on standard error): run as
/// the service's user, who cannot read an administrator's files, the shell
/// that redirects them can.
async fn import_users(store: &anxin_store::Store, file: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let stdio = |path: &std::path::Path| path.as_os_str() == "-";
    let text = if stdio(file) {
        std::io::read_to_string(std::io::stdin()).context("cannot read the CSV from standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader.headers()?.iter().map(str::to_lowercase).collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(name_at), Some(role_at)) = (column("name"), column("role")) else {
        anyhow::bail!("{}: the first row must name the columns: name,role,regions,kind", file.display());
    };
    let (regions_at, kind_at) = (column("regions").or_else(|| column("region")), column("kind"));
    let taken: std::collections::HashSet<String> = store.users().await?.into_iter().map(|u| u.name).collect();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                problems.push(format!("line {line}: {error}"));
                continue;
            }
        };
        let field = |at: Option<usize>| at.and_then(|at| record.get(at)).unwrap_or("").to_string();
        let checked = (|| -> anyhow::Result<UserRow> {
            let name = anxin_domain::access::user_name(&field(Some(name_at))).map_err(|e| anyhow!("{e}"))?;
            let role_text = field(Some(role_at));
            let role = Role::parse(&role_text)
                .ok_or_else(|| anyhow!("role {role_text:?} is not one of: admin, oncall, visitor, official"))?;
            let regions = field(regions_at)
                .split(';')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(Region::parse)
                .collect::<Result<Vec<_>, _>>()?;
            if role.needs_region() && regions.is_empty() {
                anyhow::bail!("{}", anxin_domain::access::AccessError::RegionNeeded(role.as_str()));
            }
            let kind = Some(field(kind_at)).filter(|k| !k.is_empty()).as_deref().map(visitor_kind).transpose()?;
            if kind.is_some() && role != Role::Visitor {
                anyhow::bail!("a kind is for visitors only");
            }
            if taken.contains(&name) {
                anyhow::bail!("there is already a user called {name}");
            }
            Ok(UserRow { name, role, regions, kind })
        })();
        match checked {
            Ok(row) if rows.iter().any(|r: &UserRow| r.name == row.name) => {
                problems.push(format!("line {line}: {} is in the file twice", row.name));
            }
            Ok(row) => rows.push(row),
            Err(error) => problems.push(format!("line {line}: {error}")),
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("nobody added; {} of the rows are wrong:\n{}", problems.len(), problems.join("\n"));
    }
    anyhow::ensure!(!rows.is_empty(), "{}: no users in it", file.display());
    // The passwords' file first, new and its owner's only, before anyone is added.
    let mut passwords: Box<dyn std::io::Write> = if stdio(out) {
        Box::new(std::io::stdout())
    } else {
        use std::os::unix::fs::OpenOptionsExt;
        Box::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(out)
                .with_context(|| format!("cannot create {} (it must not exist)", out.display()))?,
        )
    };
    writeln!(passwords, "name,one_time_password")?;
    for (added, row) in rows.iter().enumerate() {
        let password = anxin_domain::access::one_time_password();
        let user = store
            .add_user(&row.name, row.role, &row.regions, &password, now_ms())
            .await
            .with_context(|| format!("{} added before this failed; the rest were not", added))?;
        if let Some(kind) = row.kind {
            store.set_visitor_kind(&row.name, kind, "anxin", now_ms()).await?;
        }
        writeln!(passwords, "{},{password}", user.name)?;
        passwords.flush()?;
        if stdio(out) {
            eprintln!("added {} ({})", user.name, user.role);
        } else {
            out!("added {} ({})", user.name, user.role);
        }
    }
    if stdio(out) {
        eprintln!("{} users added; their one-time passwords went to standard output: hand them over", rows.len());
    } else {
        out!(
            "{} users added; their one-time passwords are in {} (its owner's only): hand them over, then delete it",
            rows.len(),
            out.display()
        );
    }
    Ok(())
}

/// `anxin retention`: the daily job, now.
pub async fn retention(settings: &Settings) -> anyhow::Result<()> {
    let policy = settings.retention;
    let store = open_store(settings).await?;
    let applied = store.apply_retention(&policy, now_ms(), anxin_store::RETENTION_BATCH).await;
    store.close().await;
    let report = applied?;
    let kept = |n: u32, unit: &str| if n == 0 { "for ever".to_string() } else { format!("{n} {unit}") };
    out!(
        "retention: raw messages {}, hourly activity {}, audit log {}, visit photos and locations {}, \
         visits and alerts {}, left elders anonymised after {}",
        kept(policy.raw_messages_days, "days"),
        kept(policy.hourly_activity_days, "days"),
        kept(policy.audit_days, "days"),
        kept(policy.visit_evidence_days, "days"),
        kept(policy.records_years, "years"),
        kept(policy.left_elders_years, "years")
    );
    for line in report.to_string().lines() {
        out!("{line}");
    }
    anyhow::ensure!(report.failed.is_empty(), "retention not finished for {} kind(s); see above", report.failed.len());
    Ok(())
}

/// `anxin backup FILE` (or `--into DIR [--keep N]`): a consistent copy
/// while `serve` runs, then checked; with `--keep`, older ones pruned.
pub async fn backup(
    settings: &Settings,
    file: Option<std::path::PathBuf>,
    into: Option<std::path::PathBuf>,
    keep: Option<usize>,
) -> anyhow::Result<()> {
    let file = match (&file, &into) {
        (Some(file), _) => file.clone(),
        (None, Some(folder)) => {
            folder.join(format!("anxin-{}.sqlite3", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")))
        }
        (None, None) => anyhow::bail!("say where: FILE, or --into DIR"),
    };
    let store = open_store(settings).await?;
    let written = store.backup_into(&file).await;
    store.close().await;
    written?;
    let summary = anxin_store::check_backup(&file).await?;
    out!("backup written: {} — {summary}", file.display());
    if let (Some(folder), Some(keep)) = (into, keep) {
        // The timer's backups only (anxin-*.sqlite3), the oldest first by name (the time).
        let mut taken: Vec<std::path::PathBuf> = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot list {}", folder.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("anxin-") && n.ends_with(".sqlite3"))
            })
            .collect();
        taken.sort();
        let over = taken.len().saturating_sub(keep.max(1));
        for old in &taken[..over] {
            std::fs::remove_file(old).with_context(|| format!("cannot remove {}", old.display()))?;
            out!("removed the older backup {}", old.display());
        }
    }
    Ok(())
}

/// `anxin restore FILE [--replace]`: checks the backup, puts it in place of
/// the SQLite database (the one there kept beside it), brings it to this
/// build's schema and checks the audit log.
pub async fn restore(settings: &Settings, file: &std::path::Path, replace: bool) -> anyhow::Result<()> {
    let anxin_store::Database::Sqlite(target) = &settings.database else {
        anyhow::bail!(
            "restore puts back a SQLite database; a PostgreSQL one is restored with pg_restore (see the README)"
        );
    };
    let summary = anxin_store::check_backup(file).await?;
    out!("backup checked: {} — {summary}", file.display());
    if target.exists() {
        if !replace {
            anyhow::bail!(
                "there is a database at {} already: stop `anxin serve`, then pass --replace (it is kept beside, renamed)",
                target.display()
            );
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        for suffix in ["", "-wal", "-shm"] {
            let from = std::path::PathBuf::from(format!("{}{suffix}", target.display()));
            if from.exists() {
                let kept = format!("{}.before-restore-{stamp}{suffix}", target.display());
                std::fs::rename(&from, &kept).with_context(|| format!("cannot move {} aside", from.display()))?;
                if suffix.is_empty() {
                    out!("the database that was there is kept as {kept}");
                }
            }
        }
    } else if let Some(folder) = target.parent() {
        std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
    }
    std::fs::copy(file, target).with_context(|| format!("cannot copy {} to {}", file.display(), target.display()))?;
    let store = open_store(settings).await?;
    let schema = store.schema_version().await?;
    let verdict = store.verify_audit_log().await?;
    store.close().await;
    if let Some((id, why)) = verdict.broken {
        anyhow::bail!("restored, but the audit log is broken at entry {id}: {why}");
    }
    out!(
        "restored to {} at schema {schema}; the audit log holds ({} entries). Start `anxin serve` again.",
        target.display(),
        verdict.entries
    );
    Ok(())
}
