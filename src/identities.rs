//! Identities on the broker from the command line: devices provisioned,
//! imported, revoked and exported for Mosquitto; bridges, alert consumers
//! and gateways. Each secret is shown once — printed, or written to a new
//! file readable by its owner only — and only its `$7$` hash is stored.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use anxin_domain::identity::{self, IdentityKind};
use anxin_store::{IdentityRecord, NewIdentity, Store, now_ms};
use anyhow::{Context, anyhow};

use crate::cli::{BridgesCommand, ConsumersCommand, GatewaysCommand};
use crate::output::out;
use crate::run::open_store;
use crate::settings::Settings;

/// Who the command line acts as, in the audit log.
const ACTOR: &str = "cli";

/// Creates identities with new secrets and shows the secrets once.
async fn issue(
    store: &Store,
    kind: IdentityKind,
    names: &[String],
    devices: &[String],
    rate: Option<u32>,
    out_file: Option<&Path>,
) -> anyhow::Result<()> {
    let (identities, secrets) = NewIdentity::issue(kind, names, devices, rate.map(i64::from))?;
    // The file is created before anything is stored, so a secret is never stored unseen.
    let mut file = out_file.map(create_private).transpose()?;
    if let Err(error) = store.create_identities(&identities, ACTOR, now_ms()).await {
        if let Some(path) = out_file {
            let _ = std::fs::remove_file(path);
        }
        return Err(error.into());
    }
    match (&mut file, out_file) {
        (Some(file), Some(path)) => {
            file.write_all(serde_json::to_string_pretty(&secrets)?.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            out!(
                "{} {kind}{} created; secrets written to {} (shown nowhere else)",
                names.len(),
                plural(names.len()),
                path.display()
            );
        }
        _ => {
            out!("{:<32} SECRET (shown only now)", kind.as_str().to_uppercase());
            for (name, secret) in &secrets {
                out!("{name:<32} {secret}");
            }
        }
    }
    Ok(())
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// A new file that only its owner can read; an existing one is never overwritten.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| anyhow!("cannot create {} for the secrets: {error}", path.display()))
}

pub async fn provision(store: &Store, device_ids: &[String], out_file: Option<&Path>) -> anyhow::Result<()> {
    issue(store, IdentityKind::Device, device_ids, &[], None, out_file).await
}

/// Reads a vendor's list from a file (see [`identity::parse_credentials`]).
pub fn read_credentials(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    identity::parse_credentials(&text).map_err(|error| anyhow!("{}: {error}", path.display()))
}

pub async fn import(store: &Store, path: &Path) -> anyhow::Result<()> {
    let credentials = read_credentials(path)?;
    let identities: Vec<NewIdentity> = credentials
        .iter()
        .map(|(id, secret)| NewIdentity {
            name: id.clone(),
            kind: IdentityKind::Device,
            secret_hash: identity::hash_secret(secret),
            rate_per_s: None,
            devices: Vec::new(),
        })
        .collect();
    store.create_identities(&identities, ACTOR, now_ms()).await?;
    out!("imported {} device{} from {}", identities.len(), plural(identities.len()), path.display());
    Ok(())
}

pub async fn revoke(store: &Store, name: &str, kind: IdentityKind) -> anyhow::Result<()> {
    store.revoke_identity(name, kind, ACTOR, now_ms()).await?;
    out!("revoked {kind} {name}: it can no longer connect, and its next publish is refused");
    Ok(())
}

/// `anxin devices export --mosquitto DIR`.
pub async fn export_mosquitto(store: &Store, dir: &Path) -> anyhow::Result<()> {
    let identities = store.identities_to_export().await?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let passwd = dir.join("passwd");
    write_replacing(&passwd, &identity::mosquitto_passwords(&identities), 0o640)?;
    // Mosquitto reads it after dropping to its own user: give that user's group read access.
    if let Some(gid) = group_id("mosquitto")
        && let Err(error) = std::os::unix::fs::chown(&passwd, None, Some(gid))
    {
        out!(
            "note: cannot give the mosquitto group {} ({error}); make it readable by Mosquitto's user",
            passwd.display()
        );
    }
    write_replacing(&dir.join("acl"), &identity::mosquitto_acl(&identities), 0o644)?;
    let settings = format!(
        "# Written by `anxin devices export --mosquitto`: include it from mosquitto.conf.\n\
         # Every client needs an identity. Also set `use_username_as_clientid true` under each\n\
         # listener in mosquitto.conf (a listener's settings cannot come from an included file).\n\
         allow_anonymous false\n\
         password_file {}\n\
         acl_file {}\n",
        dir.join("passwd").display(),
        dir.join("acl").display()
    );
    write_replacing(&dir.join("anxin-auth.conf"), &settings, 0o644)?;
    out!(
        "wrote {} identities to {}/passwd and acl, and anxin-auth.conf; send Mosquitto SIGHUP to reload",
        identities.len(),
        dir.display()
    );
    Ok(())
}

/// The id of a group in /etc/group.
fn group_id(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name)).then(|| fields.nth(1).and_then(|gid| gid.parse().ok())).flatten()
    })
}

/// Writes through a temporary file and a rename, so Mosquitto never reads half a file.
fn write_replacing(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, contents).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

fn list(records: &[IdentityRecord], kind: IdentityKind, json: bool) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string_pretty(records)?);
        return Ok(());
    }
    if records.is_empty() {
        out!("no {kind}s");
        return Ok(());
    }
    out!("{:<32} {:<20} {:<20} DEVICES", kind.as_str().to_uppercase(), "CREATED", "REVOKED");
    for record in records {
        out!(
            "{:<32} {:<20} {:<20} {}",
            record.name,
            time(record.created_at),
            record.revoked_at.map_or_else(|| "-".into(), time),
            if record.devices.is_empty() { "-".into() } else { record.devices.join(" ") }
        );
    }
    Ok(())
}

pub async fn bridges(settings: &Settings, command: BridgesCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let kind = IdentityKind::Bridge;
    match command {
        BridgesCommand::Add { name, devices, rate, out } => {
            issue(&store, kind, &[name], &devices, rate, out.as_deref()).await?;
        }
        BridgesCommand::List { json } => list(&store.broker_identities(Some(kind)).await?, kind, json)?,
        BridgesCommand::Revoke { name } => revoke(&store, &name, kind).await?,
    }
    store.close().await;
    Ok(())
}

pub async fn consumers(settings: &Settings, command: ConsumersCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let kind = IdentityKind::Consumer;
    match command {
        ConsumersCommand::Add { name, out } => issue(&store, kind, &[name], &[], None, out.as_deref()).await?,
        ConsumersCommand::List { json } => list(&store.broker_identities(Some(kind)).await?, kind, json)?,
        ConsumersCommand::Revoke { name } => revoke(&store, &name, kind).await?,
    }
    store.close().await;
    Ok(())
}

pub async fn gateways(settings: &Settings, command: GatewaysCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let kind = IdentityKind::Gateway;
    match command {
        GatewaysCommand::Add { name, out } => issue(&store, kind, &[name], &[], None, out.as_deref()).await?,
        GatewaysCommand::List { json } => list(&store.broker_identities(Some(kind)).await?, kind, json)?,
        GatewaysCommand::Revoke { name } => revoke(&store, &name, kind).await?,
    }
    store.close().await;
    Ok(())
}

/// The simulator's own devices, provisioned afresh (new secrets for this run):
/// what `anxin simulate` connects with when no credentials file is given.
pub async fn provision_simulated(store: &Store, device_ids: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let (identities, secrets) = NewIdentity::issue(IdentityKind::Device, device_ids, &[], None)?;
    store.reissue_identities(&identities, "simulator", now_ms()).await?;
    Ok(secrets)
}
