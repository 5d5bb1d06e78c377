//! Authentication and authorisation on the embedded broker: mqtt5's
//! `AuthProvider` over the registry's broker identities ([`anxin_domain::identity`]).
//!
//! - At connect: a username is required, and must equal the client id (so no
//!   one can take over another's session); the secret is checked against the
//!   stored `$7$` hash on a blocking thread, a bounded number at a time, so a
//!   city's nodes reconnecting after an outage never stall the runtime that
//!   carries ingest. The identities of devices connecting at once are read
//!   from the database together, and kept. Unknown names, wrong secrets and revoked identities get
//!   the same answer (bad username or password).
//! - At publish and subscribe: the identity's [`Grant`]. An identity is read
//!   from the database when it connects and kept while it is known; a poll of
//!   `changed_at` forgets changed ones, so a revocation in another process
//!   (`anxin devices revoke`) refuses the next publish of a connected client
//!   within [`REFRESH`].
//! - Rate: each identity has a token bucket ([`Rate`]); the ingest hook asks
//!   [`BrokerAuth::take_publish`] before it takes a message.
//! - The process's own clients (the alert publisher) use an internal identity
//!   whose secret lives only in this process's memory.
//!
//! Every refusal is counted in `anxin_broker_refused_total{reason}`; secrets
//! are never logged.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mqtt5::broker::auth::{AuthProvider, AuthResult};
use mqtt5::packet::connect::ConnectPacket;
use mqtt5::protocol::v5::reason_codes::ReasonCode;
use subtle::ConstantTimeEq as _;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::time::Instant;

use crate::metrics::BROKER_REFUSED;
use anxin_domain::identity::{Grant, IdentityKind, verify_secret};
use anxin_store::Store;

/// How often the broker looks for changed identities (revocations).
pub const REFRESH: Duration = Duration::from_secs(2);

/// Secret checks running at once on blocking threads.
const CONCURRENT_CHECKS: usize = 8;

/// The name of the process's own alert publisher on the embedded broker.
/// Upper case is outside the identity alphabet, so no provisioned identity
/// can hold it.
pub const INTERNAL_ALERTS: &str = "ANXIN-ALERTS";

/// A publish rate: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// Publish rates of the identities that did not get their own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// A device: summaries every few minutes and events; the burst covers a
    /// node's whole outbox after an outage several times over.
    pub device: Rate,
    /// A bridge carries many homes: this much per device it is assigned.
    pub bridge_per_device: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            device: Rate { per_second: 2.0, burst: 256.0 },
            bridge_per_device: Rate { per_second: 2.0, burst: 256.0 },
        }
    }
}

impl RateLimits {
    fn rate_of(&self, grant: &Grant, own: Option<i64>) -> Option<Rate> {
        let own = own.filter(|rate| *rate > 0).map(|rate| rate as f64);
        match grant.kind {
            IdentityKind::Device => Some(
                own.map_or(self.device, |per_second| Rate { per_second, burst: self.device.burst.max(per_second) }),
            ),
            IdentityKind::Bridge => {
                let devices = grant.devices.len().max(1) as f64;
                let burst = self.bridge_per_device.burst * devices;
                Some(Rate { per_second: own.unwrap_or(self.bridge_per_device.per_second * devices), burst })
            }
            // Consumers cannot publish; gateways publish what the database holds.
            IdentityKind::Consumer | IdentityKind::Gateway => None,
        }
    }
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: Rate) -> Bucket {
        Bucket { rate, tokens: rate.burst, at: Instant::now() }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate.per_second;
        self.tokens = (self.tokens + refill).min(self.rate.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A connected identity: what it may do, and its rate.
#[derive(Debug)]
struct Known {
    grant: Grant,
    bucket: Option<Mutex<Bucket>>,
}

/// Why the broker refused something, as counted on /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Anonymous,
    ClientIdMismatch,
    BadCredentials,
    PublishNotAllowed,
    SubscribeNotAllowed,
    RateLimited,
    RetainedNotAllowed,
    RetainedLimit,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Anonymous => "anonymous",
            Refusal::ClientIdMismatch => "client_id_mismatch",
            Refusal::BadCredentials => "bad_credentials",
            Refusal::PublishNotAllowed => "publish_not_allowed",
            Refusal::SubscribeNotAllowed => "subscribe_not_allowed",
            Refusal::RateLimited => "rate_limited",
            Refusal::RetainedNotAllowed => "retained_not_allowed",
            Refusal::RetainedLimit => "retained_limit",
        }
    }

    pub fn count(self) {
        metrics::counter!(BROKER_REFUSED, "reason" => self.as_str()).increment(1);
    }
}

/// A name waiting to be read, and where its identity (or none) goes.
type Waiting = (String, oneshot::Sender<Option<Arc<anxin_store::StoredIdentity>>>);

/// Identities being read for a secret check: the first connect of each
/// device this process has not seen. Whoever holds `reading` reads every
/// name waiting at that moment in one go (a few statements), and the rest
/// wait for their answer: an edge restarted under 1,000 devices reads them
/// in a handful of batches, not one by one behind its pool.
#[derive(Default)]
struct Reads {
    waiting: Mutex<Vec<Waiting>>,
    reading: tokio::sync::Mutex<()>,
    /// Batches read so far.
    batches: AtomicU64,
}

/// The embedded broker's authentication and authorisation.
pub struct BrokerAuth {
    store: Store,
    limits: RateLimits,
    internal_secret: String,
    known: RwLock<HashMap<String, Arc<Known>>>,
    /// Identities read for a secret check, kept until they change (the
    /// refresh forgets them like `known`): a device reconnecting — all of
    /// an edge's at once after it restarts — costs no database read.
    identities: RwLock<HashMap<String, Arc<anxin_store::StoredIdentity>>>,
    /// Identity reads waiting for the database.
    reads: Reads,
    /// For each name, the issue time of the secret its connected client
    /// proved: a client that authenticated before its identity was revoked
    /// and issued anew is not let back in by the new secret's existence.
    proven: Mutex<HashMap<String, i64>>,
    checks: Arc<Semaphore>,
}

impl std::fmt::Debug for BrokerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerAuth").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl BrokerAuth {
    pub fn new(store: Store, limits: RateLimits) -> Arc<BrokerAuth> {
        Arc::new(BrokerAuth {
            store,
            limits,
            internal_secret: anxin_domain::identity::new_secret(),
            known: RwLock::new(HashMap::new()),
            identities: RwLock::new(HashMap::new()),
            reads: Reads::default(),
            proven: Mutex::new(HashMap::new()),
            checks: Arc::new(Semaphore::new(CONCURRENT_CHECKS)),
        })
    }

    /// The credentials of this process's own alert publisher.
    pub fn internal_credentials(&self) -> (String, String) {
        (INTERNAL_ALERTS.to_string(), self.internal_secret.clone())
    }

    fn known(&self, name: &str) -> Option<Arc<Known>> {
        self.known.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned()
    }

    fn remember(&self, name: &str, known: Arc<Known>) {
        self.known.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_string(), known);
    }

    fn forget(&self, names: &[String]) {
        let mut known = self.known.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut identities = self.identities.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for name in names {
            known.remove(name);
            identities.remove(name);
        }
    }

    /// `name`'s identity: from memory, or read (and kept) from the database
    /// with every other name waiting to be read ([`Reads`]).
    async fn identity(&self, name: &str) -> Option<Arc<anxin_store::StoredIdentity>> {
        let kept = self.identities.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned();
        if kept.is_some() {
            return kept;
        }
        loop {
            let (answer, mut answered) = oneshot::channel();
            self.reads
                .waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((name.to_string(), answer));
            let identity = tokio::select! {
                biased;
                identity = &mut answered => identity,
                turn = self.reads.reading.lock() => {
                    let waiting = std::mem::take(&mut *self.reads.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
                    self.read_identities(waiting).await;
                    drop(turn);
                    // Ours was among them, or in the batch read before.
                    answered.await
                }
            };
            match identity {
                Ok(identity) => return identity,
                // Its reader gave up half-way (its client went): ask again.
                Err(_) => continue,
            }
        }
    }

    /// Reads `waiting`'s identities together, keeps them and answers each.
    async fn read_identities(&self, waiting: Vec<(String, oneshot::Sender<Option<Arc<anxin_store::StoredIdentity>>>)>) {
        if waiting.is_empty() {
            return;
        }
        let mut names: Vec<&str> = waiting.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        self.reads.batches.fetch_add(1, Ordering::Relaxed);
        let found: HashMap<String, Arc<anxin_store::StoredIdentity>> =
            match self.store.broker_identities_named(&names).await {
                Ok(found) => found.into_iter().map(|(name, identity)| (name, Arc::new(identity))).collect(),
                Err(error) => {
                    tracing::warn!(%error, "cannot read broker identities; refusing their connects");
                    HashMap::new()
                }
            };
        self.identities
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(found.iter().map(|(name, identity)| (name.clone(), identity.clone())));
        for (name, answer) in waiting {
            let _ = answer.send(found.get(&name).cloned());
        }
    }

    /// How many batches of identities this process has read for secret
    /// checks (a device already kept costs none).
    pub fn identity_batches_read(&self) -> u64 {
        self.reads.batches.load(Ordering::Relaxed)
    }

    /// What `name` may do: from memory, or read again (after a change) from
    /// the database. `None`: unknown or revoked.
    async fn grant_of(&self, name: &str) -> Option<Arc<Known>> {
        if let Some(known) = self.known(name) {
            return Some(known);
        }
        if name == INTERNAL_ALERTS {
            return Some(self.internal());
        }
        let proven = self.proven.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).copied();
        match self.store.broker_identity(name).await {
            Ok(Some(identity)) if identity.revoked_at.is_none() && proven == Some(identity.created_at) => {
                let known = self.known_of(identity.grant, identity.rate_per_s);
                self.remember(name, known.clone());
                Some(known)
            }
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, "cannot read a broker identity; refusing");
                None
            }
        }
    }

    fn internal(&self) -> Arc<Known> {
        let grant = Grant { name: INTERNAL_ALERTS.into(), kind: IdentityKind::Gateway, devices: Default::default() };
        let known = Arc::new(Known { grant, bucket: None });
        self.remember(INTERNAL_ALERTS, known.clone());
        known
    }

    fn known_of(&self, grant: Grant, own_rate: Option<i64>) -> Arc<Known> {
        let bucket = self.limits.rate_of(&grant, own_rate).map(|rate| Mutex::new(Bucket::new(rate)));
        Arc::new(Known { grant, bucket })
    }

    /// Whether `user` may publish on `topic` now: its grant, then its rate.
    pub async fn may_publish(&self, user: Option<&str>, topic: &str) -> Result<(), Refusal> {
        let Some(known) = (match user {
            Some(user) => self.grant_of(user).await,
            None => None,
        }) else {
            return Err(Refusal::PublishNotAllowed);
        };
        if !known.grant.may_publish(topic) {
            return Err(Refusal::PublishNotAllowed);
        }
        Ok(())
    }

    /// Takes one publish from `user`'s rate; `false` when it has none left.
    pub fn take_publish(&self, user: Option<&str>) -> bool {
        let Some(known) = user.and_then(|user| self.known(user)) else {
            return true;
        };
        known
            .bucket
            .as_ref()
            .is_none_or(|bucket| bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take())
    }

    /// Whether `user` is a device whose own status topic `topic` is (the only
    /// retained message a device may leave).
    pub fn is_own_status(&self, user: Option<&str>, topic: &str) -> bool {
        user.and_then(|user| self.known(user)).is_some_and(|known| match known.grant.kind {
            IdentityKind::Device | IdentityKind::Bridge => topic.ends_with("/status") && known.grant.may_publish(topic),
            IdentityKind::Gateway | IdentityKind::Consumer => false,
        })
    }

    /// Until `shutdown`: forgets identities changed in the database, so their
    /// next publish reads them again (a revoked one is refused).
    pub async fn run_refresh(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut since = anxin_store::now_ms();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(REFRESH) => {}
            }
            match self.store.identities_changed_since(since).await {
                Ok((names, newest)) => {
                    self.forget(&names);
                    since = newest;
                }
                Err(error) => tracing::warn!(%error, "cannot look for changed broker identities"),
            }
        }
    }

    async fn check_secret(&self, name: &str, secret: &[u8]) -> bool {
        if name == INTERNAL_ALERTS {
            return bool::from(secret.ct_eq(self.internal_secret.as_bytes()));
        }
        let Some(identity) = self.identity(name).await else {
            return false;
        };
        if identity.revoked_at.is_some() {
            return false;
        }
        let Ok(secret) = std::str::from_utf8(secret).map(str::to_string) else {
            return false;
        };
        let Ok(_permit) = Arc::clone(&self.checks).acquire_owned().await else {
            return false;
        };
        let hash = identity.secret_hash.clone();
        let matches = tokio::task::spawn_blocking(move || verify_secret(&secret, &hash)).await.unwrap_or(false);
        if matches {
            // Fresh from the database: what it may do from now on.
            self.proven
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name.to_string(), identity.created_at);
            self.remember(name, self.known_of(identity.grant.clone(), identity.rate_per_s));
        }
        matches
    }
}

fn refuse(refusal: Refusal, code: ReasonCode, why: &str) -> mqtt5::Result<AuthResult> {
    refusal.count();
    Ok(AuthResult::fail_with_reason(code, why))
}

impl AuthProvider for BrokerAuth {
    fn authenticate<'a>(
        &'a self,
        connect: &'a ConnectPacket,
        client_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = mqtt5::Result<AuthResult>> + Send + 'a>> {
        Box::pin(async move {
            let Some(name) = connect.username.as_deref() else {
                tracing::info!(client = %connect.client_id, %client_addr, "refused an anonymous MQTT client");
                return refuse(
                    Refusal::Anonymous,
                    ReasonCode::NotAuthorized,
                    "anonymous clients are refused: connect with your device id and secret",
                );
            };
            if connect.client_id != name {
                tracing::info!(client = %connect.client_id, user = %name, %client_addr, "refused: client id is not the username");
                return refuse(
                    Refusal::ClientIdMismatch,
                    ReasonCode::ClientIdentifierNotValid,
                    "the client id must be the username (the device id)",
                );
            }
            let secret = connect.password.as_deref().unwrap_or_default();
            if !self.check_secret(name, secret).await {
                tracing::info!(user = %name, %client_addr, "refused: unknown name, wrong secret or revoked");
                return refuse(Refusal::BadCredentials, ReasonCode::BadUsernameOrPassword, "bad username or password");
            }
            Ok(AuthResult::success_with_user(name))
        })
    }

    fn authorize_publish<'a>(
        &'a self,
        _client_id: &str,
        user_id: Option<&'a str>,
        topic: &'a str,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            match self.may_publish(user_id, topic).await {
                Ok(()) => true,
                Err(refusal) => {
                    refusal.count();
                    false
                }
            }
        })
    }

    fn authorize_subscribe<'a>(
        &'a self,
        _client_id: &str,
        user_id: Option<&'a str>,
        topic_filter: &'a str,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let allowed = match user_id {
                Some(user) => self.grant_of(user).await.is_some_and(|known| known.grant.may_subscribe(topic_filter)),
                None => false,
            };
            if !allowed {
                Refusal::SubscribeNotAllowed.count();
            }
            allowed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let mut bucket = Bucket::new(Rate { per_second: 0.0, burst: 3.0 });
        assert!(bucket.take() && bucket.take() && bucket.take());
        assert!(!bucket.take());
        let mut refilling = Bucket::new(Rate { per_second: 1000.0, burst: 1.0 });
        assert!(refilling.take());
        refilling.at -= Duration::from_millis(10);
        assert!(refilling.take(), "10 ms at 1000/s refills the one token");
    }

    #[test]
    fn a_bridge_gets_a_rate_sized_for_its_homes() {
        let limits = RateLimits::default();
        let bridge = Grant {
            name: "lora".into(),
            kind: IdentityKind::Bridge,
            devices: (0..100).map(|i| format!("dev-{i}")).collect(),
        };
        let rate = limits.rate_of(&bridge, None).unwrap();
        assert_eq!(rate.per_second, 200.0);
        assert_eq!(rate.burst, 25_600.0);
        assert_eq!(limits.rate_of(&bridge, Some(50)).unwrap().per_second, 50.0);
        let consumer = Grant { name: "c".into(), kind: IdentityKind::Consumer, devices: Default::default() };
        assert!(limits.rate_of(&consumer, None).is_none());
    }
}
