//! The uplink over MQTT 5 with rust-mqtt: the node's [`Connector`] and
//! [`Uplink`] for any byte stream (TCP on the host, a modem's socket or TLS
//! on a board), opened by a [`Dial`].
//!
//! Sessions use clean start: the node keeps its own outbox and resends from
//! it, so it needs no broker-side session, and a resent message carries its
//! original `seq`, which the gateway deduplicates.

use core::num::NonZero;

use embedded_io_async::{Read, Write};
use rust_mqtt::buffer::BufferProvider;
use rust_mqtt::client::Client;
use rust_mqtt::client::event::Event;
use rust_mqtt::client::options::{ConnectOptions, DisconnectOptions, PublicationOptions, TopicReference, WillOptions};
use rust_mqtt::config::{KeepAlive, SessionExpiryInterval};
use rust_mqtt::types::{MqttBinary, MqttString, TopicName};

use crate::link::{Connector, Scratch, Uplink};
use crate::node::Publish;

/// Opens the byte stream an MQTT session runs over.
pub trait Dial {
    type Connection: Read + Write;
    type Error: core::fmt::Debug;
    async fn dial(&mut self) -> Result<Self::Connection, Self::Error>;
}

/// Why a session failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttLinkError<E> {
    /// The byte stream could not be opened.
    Dial(E),
    /// A topic or payload could not be expressed (never for the contract's own).
    Encoding,
    /// The broker refused or the connection broke; the session is over.
    Session,
    /// The broker answered the PUBLISH with an error reason code.
    Rejected,
}

impl<'s> BufferProvider<'s> for Scratch<'s> {
    type Buffer = &'s mut [u8];
    type ProvisionError = ScratchExhausted;

    fn provide_buffer(&mut self, len: usize) -> Result<Self::Buffer, Self::ProvisionError> {
        self.take(len).ok_or(ScratchExhausted)
    }
}

/// The session's scratch memory ran out; the session ends and the next one starts afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScratchExhausted;

/// Optional broker credentials (with an external broker, the username is the
/// device id so the ACL pattern `anxin/v1/dev/%u/#` confines the node).
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
}

/// Connects nodes over whatever `D` dials.
#[derive(Debug)]
pub struct MqttConnector<'a, D> {
    dial: D,
    credentials: Credentials<'a>,
}

impl<'a, D: Dial> MqttConnector<'a, D> {
    pub fn new(dial: D, credentials: Credentials<'a>) -> Self {
        Self { dial, credentials }
    }
}

// One publish in flight at a time (SEND_MAXIMUM 1): the node sends its outbox
// in order and waits for each PUBACK, which also keeps rust-mqtt's ordering
// rules trivially satisfied.
type MqttClient<'s, C> = Client<'s, 's, C, Scratch<'s>, 1, 1, 1, 0, 0, 0, 0>;

/// A connected rust-mqtt session.
pub struct MqttUplink<'s, C: Read + Write> {
    client: MqttClient<'s, C>,
}

impl<C: Read + Write> core::fmt::Debug for MqttUplink<'_, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MqttUplink")
    }
}

impl<D: Dial> Connector for MqttConnector<'_, D> {
    type Error = MqttLinkError<D::Error>;
    type Uplink<'s>
        = MqttUplink<'s, D::Connection>
    where
        Self: 's;

    async fn connect<'s>(
        &'s mut self,
        scratch: &'s mut Scratch<'s>,
        client_id: &str,
        last_will: &Publish,
        keep_alive_s: u16,
    ) -> Result<Self::Uplink<'s>, Self::Error> {
        let connection = self.dial.dial().await.map_err(MqttLinkError::Dial)?;
        let will_topic = topic_name(&last_will.topic)?;
        let will_payload = MqttBinary::from_slice(&last_will.payload).map_err(|_| MqttLinkError::Encoding)?;
        let mut will = WillOptions::new(will_topic, will_payload).at_least_once();
        if last_will.retain {
            will = will.retain();
        }
        let keep_alive = NonZero::new(keep_alive_s).map_or(KeepAlive::Infinite, KeepAlive::Seconds);
        let mut options = ConnectOptions::new()
            .clean_start()
            .session_expiry_interval(SessionExpiryInterval::EndOnDisconnect)
            .keep_alive(keep_alive)
            .will(will);
        if let Some(username) = self.credentials.username {
            options = options.user_name(MqttString::from_str(username).map_err(|_| MqttLinkError::Encoding)?);
        }
        if let Some(password) = self.credentials.password {
            options = options.password(MqttBinary::from_slice(password).map_err(|_| MqttLinkError::Encoding)?);
        }
        let mut client = MqttClient::new(scratch);
        let client_id = MqttString::from_str(client_id).map_err(|_| MqttLinkError::Encoding)?;
        client.connect(connection, &options, Some(client_id)).await.map_err(|_| MqttLinkError::Session)?;
        Ok(MqttUplink { client })
    }
}

impl<C: Read + Write> Uplink for MqttUplink<'_, C> {
    type Error = MqttLinkError<()>;

    async fn publish(&mut self, message: &Publish) -> Result<(), Self::Error> {
        let topic = topic_name(&message.topic)?;
        let mut options = PublicationOptions::new(TopicReference::Name(topic)).at_least_once();
        if message.retain {
            options = options.retain();
        }
        let packet_id = self
            .client
            .publish(&options, message.payload.as_slice().into())
            .await
            .map_err(|_| MqttLinkError::Session)?
            .ok_or(MqttLinkError::Session)?;
        loop {
            match self.client.poll().await.map_err(|_| MqttLinkError::Session)? {
                Event::PublishAcknowledged(ack) if ack.packet_identifier == packet_id => return Ok(()),
                Event::PublishRejected(_) => return Err(MqttLinkError::Rejected),
                // PINGRESP and anything else unrelated to this publish.
                _ => {}
            }
        }
    }

    async fn keep_alive(&mut self) -> Result<(), Self::Error> {
        self.client.ping().await.map_err(|_| MqttLinkError::Session)?;
        // The PINGRESP is consumed by the next poll.
        Ok(())
    }

    async fn close(mut self) {
        let _ = self.client.disconnect(&DisconnectOptions::new()).await;
    }
}

fn topic_name<E>(topic: &str) -> Result<TopicName<'_>, MqttLinkError<E>> {
    let text = MqttString::from_str(topic).map_err(|_| MqttLinkError::Encoding)?;
    TopicName::new(text).ok_or(MqttLinkError::Encoding)
}
