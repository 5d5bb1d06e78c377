//! What pages show, ready to render: rows, cards and charts built from the
//! store's records in the reader's language. Pages share them through here,
//! never by importing one another.
//!
//! Architecture invariant: views are pure — no store, no request; they
//! depend on `i18n` and `web` only.

pub mod alerts;
pub mod charts;
pub mod elders;
pub mod household;
pub mod records;
pub mod responders;
