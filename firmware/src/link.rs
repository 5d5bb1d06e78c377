//! The node's main loop: sample, tick, and keep the uplink going.
//!
//! The MQTT client sits behind two small traits, [`Connector`] (open a
//! session with a Last Will) and [`Uplink`] (publish at QoS 1 and wait for the
//! PUBACK; keep the session alive). [`crate::mqtt`] implements them with
//! rust-mqtt; a test or another client crate can implement them too.
//!
//! Sensors keep being sampled while a publish waits for its PUBACK and while
//! the node waits to reconnect, so a help press is never missed because the
//! network is slow.

use embassy_futures::select::{Either, select};
use embedded_hal_async::delay::DelayNs;

use crate::board::Sensors;
use crate::drivers::POLL_INTERVAL_MS;
use crate::node::{Node, Publish};

/// Give up on a PUBACK (or a CONNACK) after this long and reconnect.
pub const ACK_TIMEOUT_MS: u64 = 10_000;
/// MQTT keep-alive the node asks for; it pings at half of it when idle.
pub const KEEP_ALIVE_S: u16 = 60;
/// Scratch memory a session may use for incoming packet fields.
pub const SCRATCH_LEN: usize = 512;

/// The node's monotonic clock in milliseconds since power-up.
pub trait Clock {
    fn now_ms(&mut self) -> u64;
}

/// One connected MQTT session.
pub trait Uplink {
    type Error: core::fmt::Debug;
    /// Publishes at QoS 1 and returns once the broker's PUBACK arrived.
    async fn publish(&mut self, message: &Publish) -> Result<(), Self::Error>;
    /// Sends a keep-alive ping.
    async fn keep_alive(&mut self) -> Result<(), Self::Error>;
    /// Disconnects cleanly (the broker then does not publish the Last Will).
    async fn close(self);
}

/// Opens MQTT sessions. `scratch` lives exactly as long as the session, so
/// each connection starts with fresh memory and nothing needs resetting.
pub trait Connector {
    type Error: core::fmt::Debug;
    type Uplink<'s>: Uplink
    where
        Self: 's;
    async fn connect<'s>(
        &'s mut self,
        scratch: &'s mut Scratch<'s>,
        client_id: &str,
        last_will: &Publish,
        keep_alive_s: u16,
    ) -> Result<Self::Uplink<'s>, Self::Error>;
}

/// Whether the loop goes on; checked every tick.
pub trait KeepRunning<const N: usize> {
    fn keep_running(&mut self, node: &Node<N>, now_ms: u64) -> bool;
}

impl<const N: usize, F: FnMut(&Node<N>, u64) -> bool> KeepRunning<N> for F {
    fn keep_running(&mut self, node: &Node<N>, now_ms: u64) -> bool {
        self(node, now_ms)
    }
}

/// Everything the loop drives besides the node.
#[derive(Debug)]
pub struct Parts<'a, C, S, K, D, R> {
    pub connector: &'a mut C,
    pub sensors: &'a mut S,
    pub clock: &'a mut K,
    pub delay: &'a mut D,
    /// The board's RNG, for reconnect jitter.
    pub random: &'a mut R,
}

/// Runs the node until `keep` says stop. On a board this is called once and
/// never stops; tests stop it.
pub async fn run<const N: usize, C, S, K, D, R>(
    node: &mut Node<N>,
    parts: Parts<'_, C, S, K, D, R>,
    mut keep: impl KeepRunning<N>,
) where
    C: Connector,
    S: Sensors,
    K: Clock,
    D: DelayNs,
    R: FnMut() -> u32,
{
    let Parts { connector, sensors, clock, delay, random } = parts;
    loop {
        let now = step(node, sensors, clock);
        if !keep.keep_running(node, now) {
            return;
        }
        if node.wants_connection(now) {
            let mut scratch_bytes = [0u8; SCRATCH_LEN];
            let mut scratch = Scratch::new(&mut scratch_bytes);
            let will = node.last_will();
            let client_id = node.device_id().clone();
            let connecting = connector.connect(&mut scratch, client_id.as_str(), &will, KEEP_ALIVE_S);
            let connected = match select(connecting, sample_for(node, sensors, clock, delay, ACK_TIMEOUT_MS)).await {
                Either::First(result) => result.ok(),
                Either::Second(()) => None,
            };
            match connected {
                Some(mut uplink) => {
                    node.on_connected();
                    match serve(&mut uplink, node, sensors, clock, delay, &mut keep).await {
                        Ok(()) => return uplink.close().await,
                        Err(()) => {
                            let now = clock.now_ms();
                            node.on_connection_lost(now, random());
                        }
                    }
                }
                None => {
                    let now = clock.now_ms();
                    node.on_connection_lost(now, random());
                }
            }
        }
        delay.delay_ms(poll_interval()).await;
    }
}

/// Serves one session until it fails (`Err`) or `keep` says stop (`Ok`).
async fn serve<const N: usize, U: Uplink, S: Sensors, K: Clock, D: DelayNs>(
    uplink: &mut U,
    node: &mut Node<N>,
    sensors: &mut S,
    clock: &mut K,
    delay: &mut D,
    keep: &mut impl KeepRunning<N>,
) -> Result<(), ()> {
    let mut last_sent_at = clock.now_ms();
    loop {
        let now = step(node, sensors, clock);
        if !keep.keep_running(node, now) {
            return Ok(());
        }
        while let Some(message) = node.next_publish() {
            match select(uplink.publish(&message), sample_for(node, sensors, clock, delay, ACK_TIMEOUT_MS)).await {
                Either::First(Ok(())) => node.on_published(message.seq),
                Either::First(Err(_)) | Either::Second(()) => return Err(()),
            }
            last_sent_at = clock.now_ms();
        }
        if clock.now_ms().saturating_sub(last_sent_at) >= u64::from(KEEP_ALIVE_S) * 1_000 / 2 {
            uplink.keep_alive().await.map_err(|_| ())?;
            last_sent_at = clock.now_ms();
        }
        delay.delay_ms(poll_interval()).await;
    }
}

/// One tick: sample every sensor into the node, then let it summarise.
fn step<const N: usize, S: Sensors, K: Clock>(node: &mut Node<N>, sensors: &mut S, clock: &mut K) -> u64 {
    let now = clock.now_ms();
    sensors.sample(now, &mut |observation| node.observe(now, observation));
    node.tick(now);
    now
}

/// Keeps sampling for `duration_ms` (the other side of a `select`).
async fn sample_for<const N: usize, S: Sensors, K: Clock, D: DelayNs>(
    node: &mut Node<N>,
    sensors: &mut S,
    clock: &mut K,
    delay: &mut D,
    duration_ms: u64,
) {
    let deadline = clock.now_ms() + duration_ms;
    while clock.now_ms() < deadline {
        delay.delay_ms(poll_interval()).await;
        step(node, sensors, clock);
    }
}

/// Session-scoped memory for the MQTT client's incoming packet fields: a bump
/// allocator over a borrowed slice, written without `unsafe` by splitting the
/// slice. It is dropped with its session, so it never needs a reset.
#[derive(Debug)]
pub struct Scratch<'s> {
    rest: &'s mut [u8],
}

impl<'s> Scratch<'s> {
    pub fn new(bytes: &'s mut [u8]) -> Self {
        Self { rest: bytes }
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Hands out the next `len` bytes, or `None` when the session has used them all.
    pub fn take(&mut self, len: usize) -> Option<&'s mut [u8]> {
        if self.rest.len() < len {
            return None;
        }
        let rest = core::mem::take(&mut self.rest);
        let (head, tail) = rest.split_at_mut(len);
        self.rest = tail;
        Some(head)
    }
}

fn poll_interval() -> u32 {
    u32::try_from(POLL_INTERVAL_MS).unwrap_or(10)
}
