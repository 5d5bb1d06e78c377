//! Enrolment (在册) and exit (退出): who is in the programme on a given day.
//!
//! An elder is enrolled from registration; they leave with a reason and an
//! effective date (their last day in the programme) and may re-enter later,
//! which starts a new period. Nothing of their history is removed. The
//! monthly visit rate counts an elder in month M when a period overlaps M
//! and, if that period ends in M, only when they were visited on or before
//! the exit date ([`crate::visits::VisitRate`]).

use serde::{Deserialize, Serialize};

use crate::ledger::choices;

choices! {
    /// 退出原因: why an elder left the programme.
    ExitReason {
        Died = ("died", "死亡", "去世"),
        Moved = ("moved", "迁出", "搬迁"),
        Institution = ("institution", "入住养老机构", "入住机构"),
        Ineligible = ("ineligible", "不再符合条件"),
        Declined = ("declined", "本人拒绝", "拒绝"),
    }
}

/// An exit as staff record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub reason: ExitReason,
    /// The last day in the programme (local).
    pub on: chrono::NaiveDate,
}

/// Why an exit or a re-entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrolmentError {
    #[error("the elder has already left the programme (on {0})")]
    AlreadyLeft(chrono::NaiveDate),
    #[error("the elder is in the programme: only an elder who left can re-enter")]
    NotLeft,
    #[error("the date {0} is in the future: record an exit once it has happened")]
    FutureExit(chrono::NaiveDate),
    #[error("the exit date {exit} is before the elder's enrolment on {enrolled}")]
    BeforeEnrolment { exit: chrono::NaiveDate, enrolled: chrono::NaiveDate },
    #[error("a re-entry must come after the exit on {0}")]
    ReentryBeforeExit(chrono::NaiveDate),
    #[error("the date {0} is in the future")]
    FutureReentry(chrono::NaiveDate),
}

impl EnrolmentError {
    /// The translation key of the message (`enrolment.*` in the console's
    /// locale files); its `{date}` placeholder is [`EnrolmentError::date`].
    pub fn key(&self) -> &'static str {
        match self {
            EnrolmentError::AlreadyLeft(_) => "enrolment.already_left",
            EnrolmentError::NotLeft => "enrolment.not_left",
            EnrolmentError::FutureExit(_) | EnrolmentError::FutureReentry(_) => "enrolment.future",
            EnrolmentError::BeforeEnrolment { .. } => "enrolment.before_enrolment",
            EnrolmentError::ReentryBeforeExit(_) => "enrolment.reentry_before_exit",
        }
    }

    /// The date the message names.
    pub fn date(&self) -> Option<chrono::NaiveDate> {
        match self {
            EnrolmentError::AlreadyLeft(d)
            | EnrolmentError::FutureExit(d)
            | EnrolmentError::FutureReentry(d)
            | EnrolmentError::ReentryBeforeExit(d) => Some(*d),
            EnrolmentError::BeforeEnrolment { enrolled, .. } => Some(*enrolled),
            EnrolmentError::NotLeft => None,
        }
    }
}

impl Exit {
    /// Checks the exit of an elder enrolled on `enrolled` (local date of the
    /// current period's start), on `today` (the deployment's date).
    pub fn check(self, enrolled: chrono::NaiveDate, today: chrono::NaiveDate) -> Result<Exit, EnrolmentError> {
        if self.on > today {
            return Err(EnrolmentError::FutureExit(self.on));
        }
        if self.on < enrolled {
            return Err(EnrolmentError::BeforeEnrolment { exit: self.on, enrolled });
        }
        Ok(self)
    }
}

/// Checks a re-entry on `day` of an elder who left on `left_on`.
pub fn check_reentry(
    day: chrono::NaiveDate,
    left_on: chrono::NaiveDate,
    today: chrono::NaiveDate,
) -> Result<chrono::NaiveDate, EnrolmentError> {
    if day > today {
        return Err(EnrolmentError::FutureReentry(day));
    }
    if day <= left_on {
        return Err(EnrolmentError::ReentryBeforeExit(left_on));
    }
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn an_exit_is_dated_between_enrolment_and_today() {
        let exit = Exit { reason: ExitReason::Died, on: day("2026-05-14") };
        assert_eq!(exit.check(day("2026-01-01"), day("2026-05-14")), Ok(exit));
        assert_eq!(exit.check(day("2026-01-01"), day("2026-05-13")), Err(EnrolmentError::FutureExit(exit.on)));
        assert_eq!(
            exit.check(day("2026-05-15"), day("2026-06-01")),
            Err(EnrolmentError::BeforeEnrolment { exit: exit.on, enrolled: day("2026-05-15") })
        );
        assert_eq!(ExitReason::parse("入住养老机构"), Some(ExitReason::Institution));
        assert_eq!(ExitReason::parse("去世"), Some(ExitReason::Died));
    }

    #[test]
    fn a_reentry_comes_after_the_exit_and_not_after_today() {
        let left = day("2026-05-14");
        assert_eq!(check_reentry(day("2026-05-15"), left, day("2026-06-01")), Ok(day("2026-05-15")));
        assert_eq!(check_reentry(left, left, day("2026-06-01")), Err(EnrolmentError::ReentryBeforeExit(left)));
        assert_eq!(
            check_reentry(day("2026-06-02"), left, day("2026-06-01")),
            Err(EnrolmentError::FutureReentry(day("2026-06-02")))
        );
    }
}
