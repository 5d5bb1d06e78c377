//! Scriptable administration: devices, elders, events. Each works against
//! the same `--data-dir` / `--database` as `serve`, while it runs.

use std::time::Duration;

use anxin_gateway::registry::ElderForm;
use anxin_gateway::store::{MessageCursor, MessageRecord, now_ms};
use anyhow::Context;

use crate::cli::{DevicesCommand, EldersCommand, EventsCommand, StorageArgs};
use crate::run::open_store;
use crate::settings::FileSettings;

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

pub async fn devices(storage: &StorageArgs, file: FileSettings, command: DevicesCommand) -> anyhow::Result<()> {
    let store = open_store(storage, &file).await?;
    match command {
        DevicesCommand::List { unclaimed, json } => {
            let devices = store.devices(unclaimed).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&devices)?);
            } else if devices.is_empty() {
                println!("{}", if unclaimed { "no unclaimed devices" } else { "no devices" });
            } else {
                println!(
                    "{:<24} {:>6} {:<8} {:<24} {:>8} {:>7} {:>5} {:>8}",
                    "DEVICE", "ELDER", "STATE", "LAST SEEN", "MESSAGES", "BATTERY", "RSSI", "TEMP °C"
                );
                for d in devices {
                    let state = if d.online { "online" } else { "offline" };
                    let temp = d.temp_dc.map(|t| format!("{:.1}", t as f64 / 10.0));
                    println!(
                        "{:<24} {:>6} {:<8} {:<24} {:>8} {:>7} {:>5} {:>8}",
                        d.device_id,
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
            println!("paired {device_id} with elder {elder}");
        }
    }
    store.close().await;
    Ok(())
}

pub async fn elders(storage: &StorageArgs, file: FileSettings, command: EldersCommand) -> anyhow::Result<()> {
    let store = open_store(storage, &file).await?;
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
            };
            let elder = store.add_elder(&form.check()?, now_ms()).await?;
            println!("added elder {}: {}", elder.id, elder.name);
        }
        EldersCommand::List { json } => {
            let elders = store.elders().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&elders)?);
            } else if elders.is_empty() {
                println!("no elders");
            } else {
                for e in elders {
                    println!(
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
    }
    store.close().await;
    Ok(())
}

fn print_message(message: &MessageRecord) {
    println!("{}  {:<24} {}", time(message.received_at), message.device_id, message.payload);
}

pub async fn events(storage: &StorageArgs, file: FileSettings, command: EventsCommand) -> anyhow::Result<()> {
    let store = open_store(storage, &file).await?;
    let EventsCommand::Tail { device, last } = command;
    let mut cursor = MessageCursor::default();
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
        // Nothing shown yet: start from now rather than replaying history.
        cursor.received_at = now_ms() - 1;
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
