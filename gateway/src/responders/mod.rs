//! The responder chain, moving by itself: family, neighbours, the village
//! and on-call reached by SMS when an alert opens, and reached further when
//! nobody answers. Never on the ingest path: it reads what ingest committed.
//!
//! - [`start_chains`] follows `alert_events` from its own cursor (the
//!   `responders` row of `alert_sinks`, held by one gateway at a time) and,
//!   for each alert a person must see to ([`chained`]), plans the chain from
//!   the elder's call list and the county's roster at that moment
//!   ([`call_order`]) and queues its first step.
//! - [`move_due_chains`] moves chains whose deadline passed: the next step,
//!   on-call told of a late arrival, or no responder; closes those whose
//!   alert was resolved.
//! - [`send_due_messages`] sends what is queued through the [`Notifier`]
//!   (the outbox: claimed, attempted, retried with backoff, given up after
//!   a day), each message's link signed for its one contact and alert.
//!
//! Each takes `now`, so a test moves the chain's clock without sleeping;
//! [`run`] calls them on the wall clock.

pub mod notify;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use anxin_domain::alerts::AlertKind;
use anxin_domain::responders::{
    ChainTimes, Contact, Message, Purpose, Relation, call_order, chained, kind_words, link,
};
use anxin_store::{Reached, Settled, Store, StoreError, now_ms};

pub use notify::Notifier;

/// How the chain runs in a deployment.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    pub notifier: Arc<dyn Notifier>,
    /// Where answer links point (the `public_url` setting), without a
    /// trailing `/`.
    pub public_url: String,
    pub times: ChainTimes,
    /// The deployment's time zone: the contacts' hours are local.
    pub utc_offset: chrono::FixedOffset,
}

/// The chain's cursor in `alert_sinks`.
pub const CURSOR: &str = "responders";
/// How long a gateway holds the cursor without renewing.
const LEASE_MS: i64 = 15_000;
/// A message claimed but not settled by then (the process died) is tried again.
const CLAIM_MS: i64 = 60_000;
/// Messages sent at once.
const BATCH: i64 = 32;
/// After this many attempts (about a day), a message is given up.
pub const MAX_ATTEMPTS: i64 = 300;
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// 2 s after the first failure, doubling to 5 minutes.
pub fn retry_backoff_ms(attempts: i64) -> i64 {
    (1_000i64 << attempts.clamp(0, 8)).min(300_000)
}

/// The people an alert of `kind` in `county` reaches, from `elder_id`'s
/// call list and whoever is on the roster at `now`, in steps.
pub async fn plan(
    store: &Store,
    config: &ChainConfig,
    elder_id: i64,
    kind: AlertKind,
    county: &str,
    now: i64,
) -> Result<Vec<Reached>, StoreError> {
    let records = store.contacts(elder_id).await?;
    let mut people: Vec<(Option<i64>, Contact)> =
        records.iter().filter_map(|record| Some((Some(record.id), record.contact()?))).collect();
    if let Some(shift) = store.on_duty(county, now).await? {
        people.push((
            None,
            Contact { name: shift.person, relation: Relation::Oncall, phone: shift.phone, hours: None, kinds: vec![] },
        ));
    }
    let contacts: Vec<Contact> = people.iter().map(|(_, contact)| contact.clone()).collect();
    let local = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default().with_timezone(&config.utc_offset);
    let steps = call_order(kind, &contacts, local.time());
    let mut reached = Vec::new();
    for (step, indexes) in steps.iter().enumerate() {
        for i in indexes {
            let (contact_id, contact) = &people[*i];
            reached.push(Reached {
                step,
                contact_id: *contact_id,
                name: contact.name.clone(),
                relation: contact.relation.code().to_string(),
                phone: contact.phone.clone(),
            });
        }
    }
    Ok(reached)
}

/// Chains started per call of [`start_chains`]: a burst of alarms is
/// started a slice at a time, its first messages sent between slices.
pub const START_SLICE: usize = 32;

/// Starts the chains of up to [`START_SLICE`] alerts opened since the
/// cursor. Returns how many started and whether more wait.
pub async fn start_chains(
    store: &Store,
    config: &ChainConfig,
    holder: &str,
    now: i64,
) -> Result<(usize, bool), StoreError> {
    let Some(mut through) = store.hold_sink(CURSOR, holder, now, LEASE_MS).await? else { return Ok((0, false)) };
    let mut started = 0;
    let mut more = false;
    'pages: loop {
        let changes = store.alert_changes_after(through, 256).await?;
        if changes.is_empty() {
            break;
        }
        for change in &changes {
            if started == START_SLICE {
                more = true;
                break 'pages;
            }
            if change.action == "opened" && chained(change.kind) {
                let plan = plan(store, config, change.elder_id, change.kind, &change.county, now).await?;
                if store.start_chain(change.alert_id, &plan, config.times.accept_ms(change.kind), now).await?.is_some()
                {
                    started += 1;
                }
            }
            through = change.position;
        }
    }
    store.advance_sink(CURSOR, holder, through).await?;
    Ok((started, more))
}

/// The roster's on-call in `county` at `now`, as the chain reaches them.
async fn oncall(store: &Store, county: &str, now: i64) -> Result<Option<Reached>, StoreError> {
    Ok(store.on_duty(county, now).await?.map(anxin_store::DutyShift::reached))
}

/// Moves every chain whose deadline has passed by `now`; closes the chains
/// of resolved alerts. Returns the history lines written.
pub async fn move_due_chains(store: &Store, config: &ChainConfig, now: i64) -> Result<Vec<i64>, StoreError> {
    store.close_resolved_chains(now).await?;
    let mut events = Vec::new();
    for due in store.due_chains(now, 200).await? {
        let oncall = oncall(store, &due.county, now).await?;
        if let Some(event) = store.move_due_chain(&due, &config.times, oncall.as_ref(), now).await? {
            events.push(event);
        }
    }
    Ok(events)
}

/// A message's answer link under `public_url`.
pub fn answer_link(public_url: &str, key: &[u8], message_id: i64) -> String {
    format!("{}/r/{}", public_url.trim_end_matches('/'), link::token(key, message_id))
}

/// Sends the messages due by `now`, at once, each within its own time
/// limit. Returns how many were taken by the provider.
pub async fn send_due_messages(store: &Store, config: &ChainConfig, key: &[u8], now: i64) -> Result<usize, StoreError> {
    let due = store.due_messages(now, BATCH).await?;
    let ids: Vec<i64> = due.iter().map(|outgoing| outgoing.message.id).collect();
    let claimed = store.claim_messages(&ids, now + CLAIM_MS, now).await?;
    let mut attempts = Vec::new();
    for outgoing in due.into_iter().filter(|outgoing| claimed.contains(&outgoing.message.id)) {
        let message = Message {
            village: outgoing.village.clone(),
            kind: kind_words(outgoing.kind).to_string(),
            link: answer_link(&config.public_url, key, outgoing.message.id),
            purpose: Purpose::parse(&outgoing.message.purpose).unwrap_or(Purpose::Alert),
        };
        attempts.push(async move {
            let sent = tokio::time::timeout(
                ATTEMPT_TIMEOUT,
                config.notifier.send(outgoing.message.id, &outgoing.message.phone, &message),
            )
            .await
            .unwrap_or_else(|_| {
                Err(notify::SendError {
                    reason: format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                    retry: true,
                })
            });
            (outgoing, sent)
        });
    }
    let results = futures_util::future::join_all(attempts).await;
    let name = config.notifier.name();
    let mut taken = 0;
    let mut outcomes = Vec::with_capacity(results.len());
    for (outgoing, sent) in &results {
        let id = outgoing.message.id;
        match sent {
            Ok(receipt) => {
                taken += 1;
                metrics::counter!(crate::metrics::RESPONDER_SMS_SENT, "provider" => name).increment(1);
                outcomes.push((id, Settled::Sent(receipt.reference.as_deref())));
            }
            Err(error) => {
                metrics::counter!(crate::metrics::RESPONDER_SMS_FAILURES, "provider" => name).increment(1);
                let tried = outgoing.message.attempts + 1;
                let retry_at = (error.retry && tried < MAX_ATTEMPTS).then(|| now + retry_backoff_ms(tried));
                tracing::warn!(message = id, attempt = tried, retry = retry_at.is_some(), %error, "SMS not sent");
                outcomes.push((id, Settled::Failed { error: &error.reason, retry_at }));
            }
        }
    }
    store.settle_messages(&outcomes, now_ms().max(now)).await?;
    Ok(taken)
}

/// Runs the chain on the wall clock until `shutdown` turns true: at least
/// every 250 ms, at once when an alert event is written here.
pub async fn run(store: Store, config: ChainConfig, holder: String, mut shutdown: watch::Receiver<bool>) {
    let key = loop {
        match store.link_key().await {
            Ok(key) => break key,
            Err(error) => {
                tracing::error!(%error, "the responder chain cannot read its link key; retrying");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let mut writes = store.alert_writes();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = now_ms();
        let round = async {
            let (_, more) = start_chains(&store, &config, &holder, now).await?;
            move_due_chains(&store, &config, now).await?;
            let sent = send_due_messages(&store, &config, &key, now).await?;
            Ok::<_, StoreError>(more || sent == usize::try_from(BATCH).unwrap_or(32))
        };
        match round.await {
            // A burst: more alarms to start or a full batch sent; go on at once.
            Ok(true) => continue,
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "responder chain round failed; retrying"),
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = writes.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}
