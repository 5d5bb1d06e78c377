//! The caregiver console: the web pages, JSON API and live alert board that
//! on-call staff, visitors and civil-affairs officials use.
//!
//! It depends on the gateway's domain and store and never the other way
//! round. It is filled in by the console issue; today it is an empty room.

pub use anxin_gateway as gateway;
