//! What every handler of the console shares, in one `AppState`: the store,
//! the deployment's policy (thresholds and time zone), the live feed of
//! alert changes, how long sessions last and the sign-in throttle.
//!
//! Architecture invariant: this is the bottom room of the console. It
//! imports nothing of the console but the throttle's type; every other room
//! takes `State<AppState>` (or a part of it by `FromRef`).

use std::sync::Arc;

use axum::extract::FromRef;
use tokio::sync::broadcast;

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::responders::ChainTimes;
use anxin_domain::time::Clock;
use anxin_store::{AlertChange, SessionLimits, Store};

use crate::auth::throttle::Throttle;

/// The console's state: cheap to clone (every part is shared).
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// The deployment's thresholds and time zone (the console's "today").
    pub policy: Arc<AlertPolicy>,
    /// Alert changes as they are committed (the gateway's
    /// `alerts::delivery::start_feed`); the board and `/api/v1/alerts/events`
    /// subscribe.
    pub feed: broadcast::Sender<Arc<AlertChange>>,
    pub limits: SessionLimits,
    pub throttle: Arc<Throttle>,
    /// Where handlers read the time: the system's, or a test's set clock.
    pub clock: Clock,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[std::net::IpAddr]>,
    /// How long the responder chain waits (an answer through a link moves it).
    pub chain_times: Arc<ChainTimes>,
    /// Answer links opened per client address: the link endpoint's limit.
    pub link_limiter: Arc<crate::auth::throttle::LinkLimiter>,
    /// The key answer links are signed with, read from the store once.
    pub link_key: Arc<tokio::sync::OnceCell<Vec<u8>>>,
    /// Days a visit's photo and location are kept (`[retention]`; 0: as long
    /// as the record): the visit form tells the visitor and the elder.
    pub evidence_days: u32,
}

impl AppState {
    pub fn new(store: Store, policy: Arc<AlertPolicy>, feed: broadcast::Sender<Arc<AlertChange>>) -> AppState {
        AppState {
            store,
            policy,
            feed,
            limits: SessionLimits::default(),
            throttle: Arc::new(Throttle::default()),
            clock: Clock::system(),
            trusted_proxies: Arc::new([]),
            chain_times: Arc::new(ChainTimes::default()),
            link_limiter: Arc::new(crate::auth::throttle::LinkLimiter::default()),
            link_key: Arc::new(tokio::sync::OnceCell::new()),
            evidence_days: anxin_store::RetentionPolicy::default().visit_evidence_days,
        }
    }

    /// …behind these reverse proxies (`--trusted-proxy`).
    #[must_use]
    pub fn behind(mut self, proxies: &[std::net::IpAddr]) -> AppState {
        self.trusted_proxies = proxies.into();
        self
    }

    /// …with the deployment's chain times (`[chain]`).
    #[must_use]
    pub fn with_chain_times(mut self, times: ChainTimes) -> AppState {
        self.chain_times = Arc::new(times);
        self
    }

    /// …keeping a visit's photo and location this many days (`[retention]`).
    #[must_use]
    pub fn with_evidence_days(mut self, days: u32) -> AppState {
        self.evidence_days = days;
        self
    }

    /// Now, UTC epoch milliseconds, from the state's clock.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The deployment's local date now (Anxin's day, not the machine's).
    pub fn today(&self) -> chrono::NaiveDate {
        self.clock.today(self.policy.utc_offset)
    }
}

impl FromRef<AppState> for Store {
    fn from_ref(state: &AppState) -> Store {
        state.store.clone()
    }
}

impl FromRef<AppState> for Arc<AlertPolicy> {
    fn from_ref(state: &AppState) -> Arc<AlertPolicy> {
        state.policy.clone()
    }
}

impl FromRef<AppState> for Clock {
    fn from_ref(state: &AppState) -> Clock {
        state.clock.clone()
    }
}
