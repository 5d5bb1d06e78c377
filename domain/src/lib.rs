//! Anxin's domain: what the programme's words mean, as plain data and pure
//! functions. No database, no network, no async runtime — every rule here
//! takes the moment it judges as an argument, so a test runs a month in
//! milliseconds.
//!
//! - [`access`]: roles, the regions they cover, passwords and tokens: who may
//!   see what.
//! - [`registry`]: an elder's registration, checked once at the boundary
//!   (GB 11643 citizen ID, phones, categories of annex 2).
//! - [`ledger`]: the programme's ledger (台账): its columns, its choices, and
//!   reading and writing it as `.xlsx` or `.csv` (UTF-8 or GBK).
//! - [`enrolment`]: who is in the programme: exits with their reason and
//!   date, re-entries.
//! - [`festivals`]: 春节, 中秋 and 重阳 on the solar calendar, for heightened watch.
//! - [`visits`]: the visit record form (annex 1), months, and the monthly
//!   visit rate (月探访率).
//! - [`alerts`]: alert kinds and outcomes, the policy, the rules, the usual
//!   routine and the remote check-in rule.
//! - [`responders`]: an elder's call list and the order an alert reaches it.
//! - [`identity`]: who may speak on the broker, and what each may do.
//! - [`time`]: epoch milliseconds and their units.

pub mod access;
pub mod alerts;
pub mod audit;
pub mod enrolment;
pub mod evidence;
pub mod festivals;
pub mod identity;
pub mod ledger;
pub mod outbound;
pub mod registry;
pub mod responders;
pub mod time;
pub mod visits;
