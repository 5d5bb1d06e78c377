//! The responder chain against real databases and a real HTTP server playing
//! Alibaba Cloud's SMS API: it checks every request as Aliyun does (the
//! fields, the template's variables, the signature, the time, the nonce).
//! The chain's clock is set, never slept on.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use anxin_domain::alerts::rules::day_start;
use anxin_domain::registry::NewElder;
use anxin_domain::responders::{Answer, ChainState, ChainTimes, ContactForm, Relation, link};
use anxin_domain::time::{HOUR_MS as HOUR, MINUTE_MS as MINUTE};
use anxin_gateway::ingest::{Checked, check};
use anxin_gateway::responders::notify::{AliyunConfig, AliyunSms};
use anxin_gateway::responders::{ChainConfig, move_due_chains, send_due_messages, start_chains};
use anxin_store::{AnswerError, Store};

use crate::{Backend, fresh_store, on_both_backends};

on_both_backends!(
    a_smoke_alarm_reaches_the_first_contacts_and_the_chain_moves_on_when_nobody_answers,
    answers_move_the_chain_and_a_late_arrival_is_told_to_on_call,
    a_provider_that_is_down_is_retried_and_the_board_hears_of_it,
    a_smoke_alarm_s_messages_go_before_those_of_lesser_alerts_queued_earlier,
    two_gateways_at_once_move_a_chain_once_and_take_a_double_tap_once,
);

const KEY_ID: &str = "LTAI-anxin-test";
const KEY_SECRET: &str = "the bureau's access key secret";
const PUBLIC_URL: &str = "https://anxin.example.gov.cn";

/// 03:00 local (UTC+8): at night, when a contact's hours matter.
fn t0() -> i64 {
    day_start(20_600, &Default::default()) + 3 * HOUR
}

fn smoke(device: &str, seq: u32) -> Checked {
    let payload = format!(r#"{{"v":1,"boot":5,"seq":{seq},"up":{},"kind":"smoke","state":"alarm"}}"#, seq * 10);
    check(&format!("anxin/v1/dev/{device}/event"), payload.as_bytes())
}

fn inactivity_free_summary(device: &str) -> Checked {
    let payload =
        r#"{"v":1,"boot":5,"seq":1,"up":300000,"interval_s":300,"motion":3,"door_opens":0,"temp_dc":205,"battery":80}"#;
    check(&format!("anxin/v1/dev/{device}/summary"), payload.as_bytes())
}

/// One request as the stand-in took it.
#[derive(Debug, Clone)]
struct Sms {
    phone: String,
    template: String,
    params: serde_json::Value,
}

/// RFC 3986 percent-encoding as Aliyun's documentation spells it: letters,
/// digits and `-_.~` stay, every other byte of the UTF-8 is `%XX`.
fn aliyun_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// What Aliyun checks of a `SendSms` request, written from its
/// documentation (not with Anxin's code): `Err` names the refusal's code.
fn aliyun_checks(query: &BTreeMap<String, String>, nonces: &mut HashSet<String>) -> Result<Sms, &'static str> {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let field = |name: &str| query.get(name).map(String::as_str);
    for (name, value) in [
        ("Action", "SendSms"),
        ("Version", "2017-05-25"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("Format", "JSON"),
    ] {
        if field(name) != Some(value) {
            return Err("MissingParameter");
        }
    }
    if field("AccessKeyId") != Some(KEY_ID) {
        return Err("InvalidAccessKeyId.NotFound");
    }
    let timestamp = field("Timestamp").ok_or("MissingParameter")?;
    let sent = chrono::NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%dT%H:%M:%SZ")
        .map_err(|_| "InvalidTimeStamp.Format")?;
    if (chrono::Utc::now().naive_utc() - sent).num_minutes().abs() > 15 {
        return Err("InvalidTimeStamp.Expired");
    }
    let nonce = field("SignatureNonce").ok_or("MissingParameter")?;
    if !nonces.insert(nonce.to_string()) {
        return Err("SignatureNonceUsed");
    }
    let canonical: Vec<String> = query
        .iter()
        .filter(|(name, _)| name.as_str() != "Signature")
        .map(|(name, value)| format!("{}={}", aliyun_encode(name), aliyun_encode(value)))
        .collect();
    let string_to_sign = format!("GET&%2F&{}", aliyun_encode(&canonical.join("&")));
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(format!("{KEY_SECRET}&").as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if field("Signature") != Some(expected.as_str()) {
        return Err("SignatureDoesNotMatch");
    }
    let phone = field("PhoneNumbers").ok_or("MissingParameter")?;
    if phone.len() != 11 || !phone.starts_with('1') || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return Err("isv.MOBILE_NUMBER_ILLEGAL");
    }
    if field("SignName") != Some("安心") {
        return Err("isv.SMS_SIGNATURE_ILLEGAL");
    }
    let template = field("TemplateCode").ok_or("MissingParameter")?;
    let params: serde_json::Value =
        serde_json::from_str(field("TemplateParam").ok_or("isv.TEMPLATE_MISSING_PARAMETERS")?)
            .map_err(|_| "isv.INVALID_JSON_PARAM")?;
    let keys: Vec<&str> = params.as_object().ok_or("isv.INVALID_JSON_PARAM")?.keys().map(String::as_str).collect();
    if keys != ["kind", "link", "village"] {
        return Err("isv.TEMPLATE_PARAMS_ILLEGAL");
    }
    Ok(Sms { phone: phone.into(), template: template.into(), params })
}

/// The stand-in: refuses with 503 while `down` is set, then checks and
/// keeps each request.
struct Provider {
    endpoint: String,
    taken: Arc<Mutex<Vec<Sms>>>,
    refused: Arc<Mutex<Vec<&'static str>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

async fn aliyun() -> Provider {
    use axum::http::StatusCode;
    use std::sync::atomic::Ordering;
    let taken = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let nonces = Arc::new(Mutex::new(HashSet::new()));
    let (log, refusals, outage) = (Arc::clone(&taken), Arc::clone(&refused), Arc::clone(&down));
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move |axum::extract::Query(query): axum::extract::Query<BTreeMap<String, String>>| {
            let (log, refusals, outage, nonces) =
                (Arc::clone(&log), Arc::clone(&refusals), Arc::clone(&outage), Arc::clone(&nonces));
            async move {
                if outage.load(Ordering::SeqCst) {
                    return (StatusCode::SERVICE_UNAVAILABLE, String::from("down"));
                }
                let checked = aliyun_checks(&query, &mut nonces.lock().unwrap());
                match checked {
                    Ok(sms) => {
                        let id = log.lock().unwrap().len();
                        log.lock().unwrap().push(sms);
                        (
                            StatusCode::OK,
                            format!(r#"{{"Code":"OK","Message":"OK","BizId":"biz-{id}","RequestId":"r"}}"#),
                        )
                    }
                    Err(code) => {
                        refusals.lock().unwrap().push(code);
                        (StatusCode::BAD_REQUEST, format!(r#"{{"Code":"{code}","Message":"refused","RequestId":"r"}}"#))
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Provider { endpoint: format!("http://{address}/"), taken, refused, down }
}

fn config(provider: &Provider) -> ChainConfig {
    let sms = AliyunSms::new(AliyunConfig {
        endpoint: Some(provider.endpoint.clone()),
        access_key_id: KEY_ID.into(),
        access_key_secret: KEY_SECRET.into(),
        sign_name: "安心".into(),
        template_code: "SMS_480000001".into(),
        late_template_code: Some("SMS_480000002".into()),
        region_id: None,
    })
    .unwrap();
    ChainConfig {
        notifier: Arc::new(sms),
        public_url: PUBLIC_URL.into(),
        times: ChainTimes::default(),
        utc_offset: chrono::FixedOffset::east_opt(8 * 3_600).unwrap(),
    }
}

fn elder_of_jinshan() -> NewElder {
    NewElder {
        name: "王秀英".into(),
        county: "振兴区".into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: "锦山大街 12 号".into(),
        phone: Some("13904150000".into()),
        categories: "living_alone".into(),
        ..NewElder::default()
    }
}

/// An elder of 锦山社区 with a node and a call list: a daughter (reachable
/// 08:00–20:00), a neighbour, the grid worker, a son; 值班员 on the roster.
async fn home_with_call_list(store: &Store, t: i64) -> i64 {
    let id = store.add_elder(&elder_of_jinshan(), t - HOUR).await.unwrap().id;
    store.pair_device("node-r", id, t - HOUR).await.unwrap();
    crate::commit_batch(store, &[(inactivity_free_summary("node-r"), t - HOUR)]).await.unwrap();
    for (name, relation, phone, hours) in [
        ("王丽", Relation::Family, "13904150001", Some(("08:00", "20:00"))),
        ("李婶", Relation::Neighbour, "13904150002", None),
        ("赵网格", Relation::GridWorker, "13904150003", None),
        ("王强", Relation::Family, "13904150004", None),
    ] {
        let form = ContactForm {
            name,
            relation: Some(relation),
            phone,
            from: hours.map(|h| h.0),
            to: hours.map(|h| h.1),
            consent: Some("电话确认"),
            ..ContactForm::default()
        };
        let (contact, consent) = form.check().unwrap();
        store.add_contact(id, &contact, &consent, "admin", t - HOUR).await.unwrap();
    }
    store
        .add_shift("振兴区", "值班员小刘", "13904159999", (t - 8 * HOUR, t + 8 * HOUR), "admin", t - HOUR)
        .await
        .unwrap();
    id
}

async fn actions(store: &Store, alert: i64) -> Vec<String> {
    store.alert_history(alert).await.unwrap().into_iter().map(|event| event.action).collect()
}

async fn a_smoke_alarm_reaches_the_first_contacts_and_the_chain_moves_on_when_nobody_answers(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let provider = aliyun().await;
    let config = config(&provider);
    let key = store.link_key().await.unwrap();
    let t = t0();
    store.register_sink(anxin_gateway::responders::CURSOR).await.unwrap();
    home_with_call_list(&store, t).await;
    let outcome = crate::commit_batch(&store, &[(smoke("node-r", 2), t)]).await.unwrap();
    assert_eq!(outcome.alert_events.len(), 1);
    assert_eq!(start_chains(&store, &config, "gw-1", t).await.unwrap(), (1, false));
    assert_eq!(start_chains(&store, &config, "gw-1", t).await.unwrap(), (0, false), "once per alert");
    let alert = store.alerts(&Default::default()).await.unwrap().remove(0).id;

    // Smoke at 03:00: the first three at once whatever their hours, with on-call.
    assert_eq!(send_due_messages(&store, &config, &key, t).await.unwrap(), 4);
    let taken = provider.taken.lock().unwrap().clone();
    let mut phones: Vec<&str> = taken.iter().map(|sms| sms.phone.as_str()).collect();
    phones.sort_unstable();
    assert_eq!(phones, ["13904150001", "13904150002", "13904150003", "13904159999"]);
    assert!(provider.refused.lock().unwrap().is_empty());
    let sms = taken.iter().find(|sms| sms.phone == "13904150001").unwrap();
    assert_eq!(sms.template, "SMS_480000001");
    assert_eq!((sms.params["village"].as_str(), sms.params["kind"].as_str()), (Some("锦山社区"), Some("烟雾报警")));
    let sent_link = sms.params["link"].as_str().unwrap();
    let token = sent_link.strip_prefix(&format!("{PUBLIC_URL}/r/")).expect("the link is under public_url");
    let messages = store.responder_messages(alert).await.unwrap();
    assert_eq!(link::verify(&key, token), Some(messages[0].id), "the link names the daughter's message");
    for sms in &taken {
        let text = sms.params.to_string();
        assert!(!text.contains("王秀英") && !text.contains("锦山大街"), "no name or address leaves: {text}");
    }
    assert_eq!(send_due_messages(&store, &config, &key, t + 1_000).await.unwrap(), 0, "each message once");

    // Nobody answers: at 3 minutes, the son.
    assert!(move_due_chains(&store, &config, t + 3 * MINUTE - 1).await.unwrap().is_empty());
    assert_eq!(move_due_chains(&store, &config, t + 3 * MINUTE).await.unwrap().len(), 1);
    assert_eq!(send_due_messages(&store, &config, &key, t + 3 * MINUTE).await.unwrap(), 1);
    assert_eq!(provider.taken.lock().unwrap().last().unwrap().phone, "13904150004");
    // Nobody again: no responder, and the chain stops.
    assert_eq!(move_due_chains(&store, &config, t + 6 * MINUTE).await.unwrap().len(), 1);
    assert!(move_due_chains(&store, &config, t + 60 * MINUTE).await.unwrap().is_empty());
    let chain = store.chain(alert).await.unwrap().unwrap();
    assert_eq!((chain.state, chain.step, chain.steps), (ChainState::NoResponder, 1, 2));
    assert_eq!(actions(&store, alert).await, ["opened", "chain_started", "chain_next", "no_responder"]);
}

async fn answers_move_the_chain_and_a_late_arrival_is_told_to_on_call(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let provider = aliyun().await;
    let config = config(&provider);
    let key = store.link_key().await.unwrap();
    let times = ChainTimes::default();
    let t = t0();
    store.register_sink(anxin_gateway::responders::CURSOR).await.unwrap();
    home_with_call_list(&store, t).await;
    crate::commit_batch(&store, &[(smoke("node-r", 2), t)]).await.unwrap();
    start_chains(&store, &config, "gw-1", t).await.unwrap();
    send_due_messages(&store, &config, &key, t).await.unwrap();
    let alert = store.alerts(&Default::default()).await.unwrap().remove(0);
    let messages = store.responder_messages(alert.id).await.unwrap();
    let (daughter, neighbour, grid) = (messages[0].id, messages[1].id, messages[2].id);
    let answer = async |id, answer, at| store.answer(id, answer, &times, at).await;

    // Two decline, one accepts: the chain waits for the arrival.
    answer(daughter, Answer::Declined, t + MINUTE).await.unwrap();
    assert!(matches!(answer(daughter, Answer::Declined, t + MINUTE).await, Err(AnswerError::AlreadyGiven)));
    assert!(matches!(answer(daughter, Answer::Accepted, t + MINUTE).await, Err(AnswerError::AlreadyGiven)));
    answer(grid, Answer::Declined, t + MINUTE).await.unwrap();
    answer(neighbour, Answer::Accepted, t + 2 * MINUTE).await.unwrap();
    let chain = store.chain(alert.id).await.unwrap().unwrap();
    assert_eq!((chain.state, chain.first_accepted_at), (ChainState::Accepted, Some(t + 2 * MINUTE)));
    assert!(move_due_chains(&store, &config, t + 3 * MINUTE).await.unwrap().is_empty(), "accepted: no next step");

    // Not arrived within 30 minutes: on-call is told, and the son is reached.
    assert_eq!(move_due_chains(&store, &config, t + 32 * MINUTE).await.unwrap().len(), 1);
    assert_eq!(send_due_messages(&store, &config, &key, t + 32 * MINUTE).await.unwrap(), 2);
    let last_two: Vec<(String, String)> =
        provider.taken.lock().unwrap()[4..].iter().map(|sms| (sms.phone.clone(), sms.template.clone())).collect();
    assert!(last_two.contains(&("13904159999".into(), "SMS_480000002".into())), "{last_two:?}");
    assert!(last_two.contains(&("13904150004".into(), "SMS_480000001".into())), "{last_two:?}");

    // The neighbour arrives; on-call resolves; the links answer no more.
    answer(neighbour, Answer::Arrived, t + 35 * MINUTE).await.unwrap();
    let chain = store.chain(alert.id).await.unwrap().unwrap();
    assert_eq!((chain.state, chain.arrived_at), (ChainState::Arrived, Some(t + 35 * MINUTE)));
    store
        .resolve_alert(
            alert.id,
            "oncall",
            anxin_domain::alerts::Outcome::FalseAlarm,
            "烧水忘关火，邻居已处理",
            t + 40 * MINUTE,
        )
        .await
        .unwrap();
    assert!(matches!(answer(grid, Answer::Accepted, t + 41 * MINUTE).await, Err(AnswerError::Closed)));
    move_due_chains(&store, &config, t + 41 * MINUTE).await.unwrap();
    assert_eq!(store.chain(alert.id).await.unwrap().unwrap().state, ChainState::Closed);
    let history = actions(&store, alert.id).await;
    assert_eq!(
        history,
        [
            "opened",
            "chain_started",
            "responder_declined",
            "responder_declined",
            "responder_accepted",
            "arrival_late",
            "responder_arrived",
            "resolved"
        ]
    );
    let audit = store.audit_entries(None, 50).await.unwrap();
    assert_eq!(audit.iter().filter(|entry| entry.action == "responder answered").count(), 4);
    // The figures: accepted after 2 minutes, arrived after 35.
    let figures = store.response_figures(&Default::default(), t - HOUR, t + HOUR).await.unwrap();
    assert_eq!(figures.len(), 1);
    let f = &figures[0];
    assert_eq!((f.township.as_str(), f.ack.alerts, f.chains, f.accepted, f.arrived), ("站前街道", 1, 1, 1, 1));
    assert_eq!((f.accept_median_ms, f.arrive_median_ms, f.no_responder), (Some(2 * MINUTE), Some(35 * MINUTE), 0));
}

async fn a_provider_that_is_down_is_retried_and_the_board_hears_of_it(backend: Backend) {
    use std::sync::atomic::Ordering;
    let (store, _guard) = fresh_store(backend).await;
    let provider = aliyun().await;
    let config = config(&provider);
    let key = store.link_key().await.unwrap();
    let t = t0();
    store.register_sink(anxin_gateway::responders::CURSOR).await.unwrap();
    home_with_call_list(&store, t).await;
    provider.down.store(true, Ordering::SeqCst);
    crate::commit_batch(&store, &[(smoke("node-r", 2), t)]).await.unwrap();
    start_chains(&store, &config, "gw-1", t).await.unwrap();
    assert_eq!(send_due_messages(&store, &config, &key, t).await.unwrap(), 0);
    let alert = store.alerts(&Default::default()).await.unwrap().remove(0).id;
    let messages = store.responder_messages(alert).await.unwrap();
    assert!(messages.iter().filter(|m| m.step == 0).all(|m| m.status == "queued" && m.attempts == 1));
    assert!(messages[0].last_error.as_deref().unwrap().contains("503"), "{:?}", messages[0].last_error);
    // Ingest goes on while the provider is down.
    let later = crate::commit_batch(&store, &[(smoke("node-r", 3), t + 1_000)]).await.unwrap();
    assert_eq!(later.stored, 1);
    // Not before the backoff; then the provider is back and takes them.
    assert_eq!(send_due_messages(&store, &config, &key, t + 1_000).await.unwrap(), 0);
    provider.down.store(false, Ordering::SeqCst);
    assert_eq!(send_due_messages(&store, &config, &key, t + 2_000).await.unwrap(), 4);
    let history = actions(&store, alert).await;
    assert_eq!(history.iter().filter(|a| *a == "sms_retrying").count(), 4, "{history:?}");
    assert_eq!(history.iter().filter(|a| *a == "sms_sent").count(), 4, "{history:?}");
    assert!(store.responder_messages(alert).await.unwrap().iter().filter(|m| m.step == 0).all(|m| m.status == "sent"));
}

async fn a_smoke_alarm_s_messages_go_before_those_of_lesser_alerts_queued_earlier(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let t = t0();
    home_with_call_list(&store, t).await;
    let tamper = r#"{"v":1,"boot":5,"seq":2,"up":20,"kind":"tamper","state":"opened"}"#;
    let tamper = check("anxin/v1/dev/node-r/event", tamper.as_bytes());
    crate::commit_batch(&store, &[(tamper, t)]).await.unwrap();
    let lesser = store.alerts(&Default::default()).await.unwrap().remove(0).id;
    let reached = |name: &str, phone: &str| anxin_store::Reached {
        step: 0,
        contact_id: None,
        name: name.into(),
        relation: "oncall".into(),
        phone: phone.into(),
    };
    // A burst of a lesser alert's messages, queued first.
    let many: Vec<_> = (0..5).map(|i| reached("值班员", &format!("1390415990{i}"))).collect();
    store.start_chain(lesser, &many, 600_000, t).await.unwrap();
    crate::commit_batch(&store, &[(smoke("node-r", 3), t + 1_000)]).await.unwrap();
    let smoke_alert = store.alerts(&Default::default()).await.unwrap().into_iter().find(|a| a.id != lesser).unwrap().id;
    store.start_chain(smoke_alert, &[reached("王丽", "13904150011")], 180_000, t + 1_000).await.unwrap();
    let first = store.due_messages(t + 2_000, 1).await.unwrap();
    assert_eq!(first[0].message.alert_id, smoke_alert, "the smoke alarm's message goes first");
    assert_eq!(store.due_messages(t + 2_000, 10).await.unwrap().len(), 6);
    // Of the lesser alert's five, the first contact goes first; and of two
    // alerts alike, each one's first contact before either's second.
    let lesser_first = store.due_messages(t + 2_000, 2).await.unwrap();
    assert_eq!((lesser_first[1].message.alert_id, lesser_first[1].message.phone.as_str()), (lesser, "13904159900"));
    let other = store.add_elder(&NewElder { name: "李桂兰".into(), ..elder_of_jinshan() }, t).await.unwrap().id;
    store.pair_device("node-s", other, t).await.unwrap();
    let tamper = r#"{"v":1,"boot":5,"seq":2,"up":20,"kind":"tamper","state":"opened"}"#;
    crate::commit_batch(&store, &[(check("anxin/v1/dev/node-s/event", tamper.as_bytes()), t + 4_000)]).await.unwrap();
    let second = store.alerts(&Default::default()).await.unwrap().into_iter().find(|a| a.elder_id == other).unwrap().id;
    store.start_chain(second, &[reached("值班员", "13904159988")], 600_000, t + 4_000).await.unwrap();
    let order: Vec<i64> =
        store.due_messages(t + 5_000, 3).await.unwrap().iter().map(|outgoing| outgoing.message.alert_id).collect();
    assert_eq!(order, [smoke_alert, lesser, second], "every alert's first contact before anyone's second");
}

async fn two_gateways_at_once_move_a_chain_once_and_take_a_double_tap_once(backend: Backend) {
    let (store, guard) = fresh_store(backend).await;
    let other = crate::reopen(&guard).await;
    let provider = aliyun().await;
    let config = config(&provider);
    let times = ChainTimes::default();
    let t = t0();
    store.register_sink(anxin_gateway::responders::CURSOR).await.unwrap();
    home_with_call_list(&store, t).await;
    crate::commit_batch(&store, &[(smoke("node-r", 2), t)]).await.unwrap();
    start_chains(&store, &config, "gw-1", t).await.unwrap();
    let alert = store.alerts(&Default::default()).await.unwrap().remove(0).id;
    // Both gateways find the chain due at 3 minutes: it moves once.
    let (one, two) = tokio::join!(
        move_due_chains(&store, &config, t + 3 * MINUTE),
        move_due_chains(&other, &config, t + 3 * MINUTE)
    );
    assert_eq!(one.unwrap().len() + two.unwrap().len(), 1, "one gateway moves it");
    assert_eq!(actions(&store, alert).await.iter().filter(|a| *a == "chain_next").count(), 1);
    // The son taps 我去处理 twice at once, through two gateways' consoles.
    let son = store.responder_messages(alert).await.unwrap().into_iter().find(|m| m.step == 1).unwrap().id;
    let (one, two) = tokio::join!(
        store.answer(son, Answer::Accepted, &times, t + 4 * MINUTE),
        other.answer(son, Answer::Accepted, &times, t + 4 * MINUTE)
    );
    assert_eq!(u8::from(one.is_ok()) + u8::from(two.is_ok()), 1, "one answer taken");
    assert!(matches!(one.err().or(two.err()), Some(AnswerError::AlreadyGiven)));
    assert_eq!(actions(&store, alert).await.iter().filter(|a| *a == "responder_accepted").count(), 1);
}
