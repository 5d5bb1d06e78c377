//! The responder chain as pages show it: one line per alert for the board
//! and the handover, and every attempt in order for the handling record.

use anxin_domain::responders::{Answer, CallBack, ChainState, Relation};
use anxin_store::{AlertEventRecord, ChainRecord, ResponderMessage};

use crate::i18n::Lang;
use crate::views::records::choice;
use crate::web::local_time;

/// Where an alert's chain stands, in a line.
#[derive(Debug, Clone)]
pub struct ChainLine {
    pub text: String,
    /// `ok`, `warn` or `bad`.
    pub class: &'static str,
}

fn relation(lang: Lang, code: &str) -> &'static str {
    Relation::parse(code).map_or("", |r| choice(lang, r.code(), r.label()))
}

fn answer_word(lang: Lang, answer: Answer) -> &'static str {
    choice(lang, &format!("answer_{}", answer.code()), answer.label())
}

/// The chain's line: who is coming, or who is being tried, or that nobody
/// answered; a provider failing is said too.
pub fn chain_line(
    chain: Option<&ChainRecord>,
    messages: &[&ResponderMessage],
    lang: Lang,
    offset: chrono::FixedOffset,
) -> Option<ChainLine> {
    let chain = chain?;
    let someone = |pick: fn(&ResponderMessage) -> Option<i64>| {
        messages.iter().filter(|m| pick(m).is_some()).min_by_key(|m| pick(m)).copied()
    };
    let mut line = match chain.state {
        ChainState::Calling => ChainLine {
            text: lang
                .t("responder.calling")
                .replace("{step}", &(chain.step + 1).to_string())
                .replace("{steps}", &chain.steps.to_string()),
            class: "warn",
        },
        ChainState::Accepted => {
            let who = someone(|m| m.accepted_at);
            let late = chain.due_at.is_none();
            ChainLine {
                text: format!(
                    "{}（{}）{} {}{}",
                    who.map_or("", |m| m.name.as_str()),
                    who.map_or("", |m| relation(lang, &m.relation)),
                    answer_word(lang, Answer::Accepted),
                    who.and_then(|m| m.accepted_at).map(|at| local_time(at, offset)).unwrap_or_default(),
                    if late { format!(" · {}", lang.t("responder.late")) } else { String::new() }
                ),
                class: if late { "bad" } else { "ok" },
            }
        }
        ChainState::Arrived => {
            let who = someone(|m| m.arrived_at);
            ChainLine {
                text: format!(
                    "{}（{}）{} {}",
                    who.map_or("", |m| m.name.as_str()),
                    who.map_or("", |m| relation(lang, &m.relation)),
                    answer_word(lang, Answer::Arrived),
                    who.and_then(|m| m.arrived_at).map(|at| local_time(at, offset)).unwrap_or_default()
                ),
                class: "ok",
            }
        }
        ChainState::NoResponder => ChainLine { text: lang.t("responder.no_responder").into(), class: "bad" },
        ChainState::Closed => ChainLine { text: lang.t("responder.closed").into(), class: "ok" },
    };
    if messages.iter().any(|m| m.status == "failed") {
        line.text.push_str(&format!(" · {}", lang.t("responder.sms_failed")));
        line.class = "bad";
    } else if messages.iter().any(|m| m.status == "queued" && m.attempts > 0) {
        line.text.push_str(&format!(" · {}", lang.t("responder.sms_retrying")));
        if line.class == "ok" {
            line.class = "warn";
        }
    }
    Some(line)
}

/// One attempt of the handling record.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    /// When it was queued (or, for a step never reached, blank).
    pub at: String,
    pub step: i64,
    pub name: String,
    pub relation: &'static str,
    pub phone: String,
    /// 短信, or 短信（未到达提醒）.
    pub channel: String,
    /// What the provider said: sent (with its id), retrying, failed, not reached.
    pub provider: String,
    pub provider_class: &'static str,
    /// The responder's answers with their times.
    pub answer: String,
}

pub fn attempt_rows(messages: &[ResponderMessage], lang: Lang, offset: chrono::FixedOffset) -> Vec<AttemptRow> {
    messages
        .iter()
        .map(|m| {
            let (provider, provider_class) = match m.status.as_str() {
                "sent" => (
                    format!(
                        "{} {}{}",
                        lang.t("responder.sent"),
                        m.sent_at.map(|at| local_time(at, offset)).unwrap_or_default(),
                        m.provider_ref.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
                    ),
                    "ok",
                ),
                "queued" if m.attempts > 0 => (
                    format!(
                        "{} ({}×): {}",
                        lang.t("responder.sms_retrying"),
                        m.attempts,
                        m.last_error.clone().unwrap_or_default()
                    ),
                    "warn",
                ),
                "queued" => (lang.t("responder.queued").to_string(), "warn"),
                "failed" => {
                    (format!("{}: {}", lang.t("responder.sms_failed"), m.last_error.clone().unwrap_or_default()), "bad")
                }
                "cancelled" => (lang.t("responder.cancelled").to_string(), "muted"),
                _ => (lang.t("responder.not_reached").to_string(), "muted"),
            };
            let mut answers = Vec::new();
            for (answer, at) in
                [(Answer::Accepted, m.accepted_at), (Answer::Arrived, m.arrived_at), (Answer::Declined, m.declined_at)]
            {
                if let Some(at) = at {
                    answers.push(format!("{} {}", answer_word(lang, answer), local_time(at, offset)));
                }
            }
            AttemptRow {
                at: m.queued_at.map(|at| local_time(at, offset)).unwrap_or_default(),
                step: m.step + 1,
                name: m.name.clone(),
                relation: relation(lang, &m.relation),
                phone: m.phone.clone(),
                channel: if m.purpose == "late" {
                    format!("{} ({})", lang.t("responder.sms"), lang.t("responder.late_notice"))
                } else {
                    lang.t("responder.sms").to_string()
                },
                provider,
                provider_class,
                answer: answers.join("；"),
            }
        })
        .collect()
}

/// On-call's call-backs to the elder, from the alert's history.
pub fn call_backs(history: &[AlertEventRecord], lang: Lang, offset: chrono::FixedOffset) -> Vec<String> {
    history
        .iter()
        .filter(|event| event.action == "called_back")
        .map(|event| {
            let outcome = event.detail.as_deref().and_then(CallBack::parse);
            format!(
                "{} {} · {}",
                local_time(event.at, offset),
                event.actor.clone().unwrap_or_default(),
                outcome.map_or("", |o| choice(lang, &format!("callback_{}", o.code()), o.label()))
            )
        })
        .collect()
}

/// The call-back outcomes, in the reader's words.
pub fn call_back_choices(lang: Lang) -> Vec<(&'static str, &'static str)> {
    CallBack::ALL.iter().map(|o| (o.code(), choice(lang, &format!("callback_{}", o.code()), o.label()))).collect()
}

/// A line of an alert's history as the printed record says it.
pub fn history_word(action: &str) -> &'static str {
    match action {
        "opened" => "告警发生",
        "repeated" => "再次触发",
        "raised" => "级别升高",
        "note" => "备注",
        "escalated" => "超时未确认，已升级",
        "reminded" => "再次提醒",
        "acknowledged" => "已确认",
        "resolved" => "处置完毕",
        "chain_started" => "开始通知联系人",
        "chain_next" => "无人接单，通知下一轮",
        "arrival_late" => "接单人未按时到达，已通知值班",
        "no_responder" => "无人响应",
        "responder_accepted" => "联系人答复：我去处理",
        "responder_arrived" => "联系人答复：已到达",
        "responder_declined" => "联系人答复：无法前往",
        "sms_retrying" => "短信发送失败，重试中",
        "sms_sent" => "短信重试后已发送",
        "sms_failed" => "短信发送失败，已放弃",
        "called_back" => "值班回访老人",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(status: &str, attempts: i64) -> ResponderMessage {
        ResponderMessage {
            id: 1,
            alert_id: 1,
            step: 0,
            purpose: "alert".into(),
            contact_id: None,
            name: "王丽".into(),
            relation: "family".into(),
            phone: "13904150011".into(),
            status: status.into(),
            attempts,
            last_error: Some("SMS provider answered HTTP 503".into()),
            provider_ref: None,
            queued_at: Some(0),
            sent_at: None,
            accepted_at: None,
            arrived_at: None,
            declined_at: None,
        }
    }

    #[test]
    fn the_board_says_when_the_provider_is_failing_and_when_nobody_answered() {
        let offset = chrono::FixedOffset::east_opt(8 * 3_600).unwrap();
        let mut chain = ChainRecord {
            alert_id: 1,
            step: 0,
            steps: 2,
            state: ChainState::Calling,
            due_at: Some(180_000),
            started_at: 0,
            first_accepted_at: None,
            arrived_at: None,
        };
        let retrying = message("queued", 2);
        let line = chain_line(Some(&chain), &[&retrying], Lang::ZhCn, offset).unwrap();
        assert_eq!((line.text.as_str(), line.class), ("正在通知：第 1/2 步 · 短信发送失败，重试中", "warn"));
        let failed = message("failed", 300);
        assert_eq!(chain_line(Some(&chain), &[&failed], Lang::ZhCn, offset).unwrap().class, "bad");
        chain.state = ChainState::NoResponder;
        assert_eq!(chain_line(Some(&chain), &[&message("sent", 0)], Lang::ZhCn, offset).unwrap().text, "无人响应");
        assert!(chain_line(None, &[], Lang::ZhCn, offset).is_none());
        let rows = attempt_rows(&[retrying], Lang::ZhCn, offset);
        assert!(rows[0].provider.contains("重试中 (2×)") && rows[0].provider.contains("503"), "{}", rows[0].provider);
    }
}
