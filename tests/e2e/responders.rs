//! The responder chain end to end, as a county would run it: `anxin serve`
//! with an SMS provider in its config file (here a real HTTP server in the
//! test, checking each request as a gateway would: its token, Anxin's
//! signature, the fields), a call list and a duty roster from the CLI, a
//! smoke alarm from a simulated node. The daughter answers through the link
//! on a phone (real headless Chromium at 390 × 844), on-call watches it on
//! the board and resolves; the handling record shows every step in order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::Locator;

use anxin_testkit::{free_port, private_folder};

use crate::browser::{Driver, first_sign_in, one_time_password, run, screenshots, until};
use crate::serve::Process;
use crate::{ADD_WANG_XIUYING, anxin, text};

const SECRET: &str = "the SMS gateway's shared token";

/// One message as the stand-in gateway took it.
#[derive(Debug, Clone, serde::Deserialize)]
struct Sms {
    to: String,
    text: String,
    link: String,
}

/// A generic SMS gateway: takes `POST /send` with its bearer token and a
/// fresh, valid `X-Anxin-Signature`; 401 for anything else.
async fn gateway() -> (String, Arc<Mutex<Vec<Sms>>>) {
    use axum::http::StatusCode;
    let taken = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&taken);
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let log = Arc::clone(&log);
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                if header("authorization") != format!("Bearer {SECRET}") {
                    return StatusCode::UNAUTHORIZED;
                }
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                let signature = header(anxin_domain::outbound::SIGNATURE_HEADER);
                if anxin_domain::outbound::verify(SECRET, &signature, &body, i64::try_from(now).unwrap()).is_err() {
                    return StatusCode::UNAUTHORIZED;
                }
                match serde_json::from_slice::<Sms>(&body) {
                    Ok(sms) if sms.to.len() == 11 && sms.text.contains(&sms.link) => {
                        log.lock().unwrap().push(sms);
                        StatusCode::OK
                    }
                    _ => StatusCode::BAD_REQUEST,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/send"), taken)
}

/// Local `YYYY-MM-DDTHH:MM` (UTC+8) `hours` from now.
fn local_in(hours: i64) -> String {
    let at = chrono::Utc::now() + chrono::Duration::hours(hours);
    at.with_timezone(&chrono::FixedOffset::east_opt(8 * 3_600).unwrap()).format("%Y-%m-%dT%H:%M").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_alarm_reaches_the_daughter_who_answers_on_her_phone_and_the_record_tells_it_all() {
    let folder = private_folder("e2e-responders");
    let data = folder.to_str().unwrap();
    run(data, &[&ADD_WANG_XIUYING[..], &["--phone", "13904150001"]].concat());
    run(data, &["devices", "pair", "resp-00001", "--elder", "1"]);
    let oncall = one_time_password(&run(data, &["users", "add", "值班员王", "--role", "oncall", "--region", "振兴区"]));
    let added = run(
        data,
        &[
            "contacts",
            "add",
            "1",
            "--name",
            "王丽",
            "--relation",
            "家属",
            "--phone",
            "13904150011",
            "--consent",
            "电话确认",
        ],
    );
    assert!(added.contains("place 1"), "{added}");
    run(
        data,
        &[
            "contacts",
            "add",
            "1",
            "--name",
            "李婶",
            "--relation",
            "neighbour",
            "--phone",
            "13904150012",
            "--consent",
            "书面同意",
        ],
    );
    let refused = crate::anxin_at(
        data,
        &["contacts", "add", "1", "--name", "x", "--relation", "family", "--phone", "13904150013", "--consent", " "],
    );
    assert!(!refused.status.success() && text(&refused.stderr).contains("consent"), "{}", text(&refused.stderr));
    run(
        data,
        &[
            "duty",
            "add",
            "--county",
            "振兴区",
            "--person",
            "值班员王",
            "--phone",
            "13904159999",
            "--from",
            &local_in(-1),
            "--to",
            &local_in(8),
        ],
    );
    assert!(run(data, &["duty", "list"]).contains("on call now"));

    let (provider, taken) = gateway().await;
    let mqtt = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{http}");
    let config = folder.join("anxin.toml");
    std::fs::write(
        &config,
        format!(
            "public_url = \"{base}\"\nsms_secret = \"{SECRET}\"\n\n[sms]\nprovider = \"http\"\nurl = \"{provider}\"\n\
             headers = {{ Authorization = \"Bearer {{secret}}\" }}\n\
             body = '{{\"to\":\"{{phone}}\",\"text\":\"{{text}}\",\"link\":\"{{link}}\"}}'\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let _serve = Process::start(&[
        "--data-dir",
        data,
        "--config",
        config,
        "serve",
        "--mqtt-listen",
        &mqtt,
        "--http-listen",
        &http,
    ]);

    // A smoke alarm from a simulated node.
    let simulated = anxin(&[
        "--data-dir",
        data,
        "simulate",
        "--broker",
        &format!("mqtt://{mqtt}"),
        "--homes",
        "1",
        "--speed",
        "600",
        "--duration",
        "2s",
        "--id-prefix",
        "resp",
        "--scenario",
        "smoke:1@1m",
    ]);
    assert!(simulated.status.success(), "{}", text(&simulated.stderr));
    // The first three at once (two contacts and on-call), within seconds.
    let reached = anxin_testkit::wait_until(Duration::from_secs(20), || taken.lock().unwrap().len() >= 3);
    assert!(reached, "messages taken: {:?}", taken.lock().unwrap());
    let messages = taken.lock().unwrap().clone();
    let mut phones: Vec<&str> = messages.iter().map(|sms| sms.to.as_str()).collect();
    phones.sort_unstable();
    assert_eq!(phones, ["13904150011", "13904150012", "13904159999"]);
    for sms in &messages {
        assert!(sms.text.contains("锦山社区烟雾报警") && sms.link.starts_with(&format!("{base}/r/")), "{sms:?}");
        assert!(!sms.text.contains("王秀英") && !sms.text.contains("锦山大街"), "no name, no address: {sms:?}");
    }
    let daughter = messages.iter().find(|sms| sms.to == "13904150011").unwrap().link.clone();

    // The daughter, on her phone: what happened, where, whom to call; she goes, then arrives.
    let driver = Driver::start();
    let phone = driver.phone("zh-CN").await;
    phone.goto(&daughter).await.unwrap();
    until(&phone, 10, "document.querySelector('form.answers') !== null").await;
    until(&phone, 2, "window.innerWidth <= 400").await;
    let page = phone.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    for expected in ["烟雾报警", "锦山社区 锦山大街 12 号", "13904150001", "值班员王", "13904159999"] {
        assert!(page.contains(expected), "{expected:?} on the phone: {page}");
    }
    assert!(phone.find(Locator::Css("a[href='tel:13904150001']")).await.is_ok(), "the elder's phone is one tap");
    // The buttons are thumb-sized and fit the screen.
    until(&phone, 2, "[...document.querySelectorAll('form.answers button')].every(b => b.getBoundingClientRect().height >= 44 && b.getBoundingClientRect().right <= window.innerWidth)").await;
    phone.find(Locator::Css("button[value=accepted]")).await.unwrap().click().await.unwrap();
    until(&phone, 10, "document.getElementById('given-accepted') !== null").await;
    std::fs::write(screenshots().join("responder-phone.png"), phone.screenshot().await.unwrap()).unwrap();
    phone.find(Locator::Css("button[value=arrived]")).await.unwrap().click().await.unwrap();
    until(&phone, 10, "document.getElementById('given-arrived') !== null").await;

    // On-call: the board says who came; the handling record has every step.
    let desk = driver.browser("zh-CN").await;
    first_sign_in(&desk, &base, "值班员王", &oncall, "夜班值守-2026-安心").await;
    until(&desk, 15, "location.pathname === '/board'").await;
    until(&desk, 15, "(document.querySelector('[data-chain]') || {}).textContent?.includes('王丽（家属）已到达')")
        .await;
    // The board's rows are redrawn live: read and click through scripts, not held elements.
    let text_of = async |selector: &str| {
        let script = format!("return document.querySelector({selector:?}).innerText;");
        desk.execute(&script, vec![]).await.unwrap().as_str().unwrap_or_default().to_string()
    };
    let on_call = text_of("p.on-call").await;
    assert!(on_call.contains("值班员王"), "{on_call}");
    desk.execute("document.querySelector('tr[data-severity=critical] .elder-link').click();", vec![]).await.unwrap();
    until(&desk, 10, "document.querySelector('#handling-record table.attempts') !== null").await;
    let record = text_of("#handling-record").await;
    for expected in ["王丽 (家属)", "李婶 (邻居)", "值班员王 (值班人员)", "已发送", "我去处理", "已到达"]
    {
        assert!(record.contains(expected), "{expected:?} in the record: {record}");
    }
    desk.find(Locator::Css("form.call-back-form select"))
        .await
        .unwrap()
        .select_by_value("answered_well")
        .await
        .unwrap();
    desk.find(Locator::Css("form.call-back-form button")).await.unwrap().click().await.unwrap();
    until(&desk, 10, "document.querySelector('p.call-back') !== null || location.search.includes('alert=')").await;
    desk.goto(&format!("{base}/board")).await.unwrap();
    until(&desk, 10, "document.querySelector('tr[data-severity=critical] .elder-link') !== null").await;
    desk.execute("document.querySelector('tr[data-severity=critical] .elder-link').click();", vec![]).await.unwrap();
    until(&desk, 10, "document.querySelector('#detail p.call-back') !== null").await;
    desk.execute("document.getElementById('handling-record').scrollIntoView();", vec![]).await.unwrap();
    std::fs::write(screenshots().join("alert-handling-record.png"), desk.screenshot().await.unwrap()).unwrap();
    let resolved = run(
        data,
        &["alerts", "resolve", "1", "--by", "值班员王", "--outcome", "visited", "--note", "女儿到场，厨房烧水"],
    );
    assert!(resolved.contains("resolved"), "{resolved}");

    // The whole story in order, from the CLI.
    let shown = run(data, &["alerts", "show", "1"]);
    let order = ["opened", "chain_started", "responder_accepted", "responder_arrived", "called_back", "resolved"];
    let mut at = 0;
    for action in order {
        let found = shown[at..].find(action).unwrap_or_else(|| panic!("{action} after the earlier steps in:\n{shown}"));
        at += found;
    }
    assert!(
        shown.contains("sms to 王丽 (family) 13904150011") && shown.contains("accepted") && shown.contains("arrived"),
        "{shown}"
    );
    let shown = || serde_json::from_str::<serde_json::Value>(&run(data, &["alerts", "show", "1", "--json"])).unwrap();
    // The chain closes at its next look (every 250 ms).
    assert!(anxin_testkit::wait_until(Duration::from_secs(10), || shown()["chain"]["state"] == "closed"));
    assert_eq!(shown()["attempts"].as_array().unwrap().len(), 3);

    // The figures: one alert in 站前街道, accepted and arrived.
    let stats = run(data, &["alerts", "stats", "--county", "振兴区"]);
    assert!(
        stats.contains("振兴区/站前街道: 1 alerts; responder chain 1: accepted 1") && stats.contains("arrived 1"),
        "{stats}"
    );

    // The link answers no more.
    phone.goto(&daughter).await.unwrap();
    until(&phone, 10, "document.body.textContent.includes('已失效')").await;
    phone.close().await.unwrap();
    desk.close().await.unwrap();
}
