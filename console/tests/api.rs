//! The JSON API against a real SQLite store: every role against an alert
//! inside and outside its scope, tokens, and the handling of an alert.

use anxin_domain::access::{Region, Role};
use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::registry::NewElder;
use anxin_gateway::ingest::check;
use anxin_store::{AlertFilter, Database, Store};
use anxin_testkit::private_folder;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::sync::Arc;
use tower::ServiceExt;

/// A metrics handle no test reads: the console's router wants one.
fn metrics() -> anxin_console::Metrics {
    anxin_console::Metrics::new(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle(), None)
}

const T: i64 = 1_780_000_000_000;
const PASSWORD: &str = "a long enough password";
const OWN_PASSWORD: &str = "one of the user's own";

fn elder(name: &str, county: &str) -> NewElder {
    NewElder {
        name: name.into(),
        county: county.into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: "-".into(),
        phone: None,
        emergency_contact: None,
        emergency_phone: None,
        categories: String::new(),
        inactivity_hours: None,
        ..NewElder::default()
    }
}

struct World {
    store: Store,
    folder: std::path::PathBuf,
    /// Alert in 振兴区 (elder assigned to the visitor), alert in 元宝区.
    here: i64,
    there: i64,
}

async fn world() -> World {
    let folder = private_folder("console-api");
    let store = Store::open(&Database::in_data_dir(&folder)).await.unwrap();
    let here = store.add_elder(&elder("王秀英", "振兴区"), T).await.unwrap();
    let there = store.add_elder(&elder("李桂兰", "元宝区"), T).await.unwrap();
    store.pair_device("node-here", here.id, T).await.unwrap();
    store.pair_device("node-there", there.id, T).await.unwrap();
    for device in ["node-here", "node-there"] {
        let smoke = check(
            &format!("anxin/v1/dev/{device}/event"),
            br#"{"v":1,"boot":1,"seq":1,"up":1,"kind":"smoke","state":"alarm"}"#,
        );
        anxin_gateway::ingest::commit_batch(&store, &AlertPolicy::default(), &[(smoke, T)]).await.unwrap();
    }
    let county = |name: &str| vec![Region::parse(name).unwrap()];
    store.add_user("admin", Role::Admin, &[], PASSWORD, T).await.unwrap();
    store.add_user("oncall-here", Role::Oncall, &county("振兴区"), PASSWORD, T).await.unwrap();
    store.add_user("official-here", Role::Official, &county("振兴区"), PASSWORD, T).await.unwrap();
    store.add_user("visitor", Role::Visitor, &[], PASSWORD, T).await.unwrap();
    store.assign_visitor(here.id, "visitor", "admin", T).await.unwrap();
    let alert_of = |elder: i64| {
        let store = store.clone();
        async move { store.alerts(&AlertFilter { elder_id: Some(elder), ..Default::default() }).await.unwrap()[0].id }
    };
    let (here, there) = (alert_of(here.id).await, alert_of(there.id).await);
    World { store, folder, here, there }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// A token for `user`, who first sets their own password (a token needs one).
async fn token_for(store: &Store, user: &str) -> String {
    if let Some(principal) = store.authenticate(user, PASSWORD).await.unwrap() {
        assert!(store.change_password(principal.user_id, PASSWORD, OWN_PASSWORD, "", T).await.unwrap());
    }
    store.issue_token(user, i64::MAX, T).await.unwrap()
}

async fn call(
    store: &Store,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
    let (feed, _) = tokio::sync::broadcast::channel(16);
    let response = anxin_console::router(
        metrics(),
        anxin_console::AppState::new(store.clone(), Arc::new(AlertPolicy::default()), feed),
    )
    .oneshot(request)
    .await
    .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_token_nothing_is_served() {
    let world = world().await;
    let (status, body) = call(&world.store, "GET", "/api/v1/alerts", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "a valid bearer token is required");
    assert_eq!(call(&world.store, "GET", "/api/v1/alerts", Some("anx_forged"), None).await.0, StatusCode::UNAUTHORIZED);
    assert!(world.store.issue_token("nobody", i64::MAX, T).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_reads_of_personal_data_are_audited_like_page_reads() {
    let world = world().await;
    let elder = world.store.alert(world.here).await.unwrap().unwrap().elder_id;
    let token = token_for(&world.store, "official-here").await;
    for path in [
        "/api/v1/elders".to_string(),
        format!("/api/v1/elders/{elder}"),
        format!("/api/v1/elders/{elder}/activity"),
        format!("/api/v1/elders/{elder}/visits"),
        format!("/api/v1/elders/{elder}/household"),
        "/api/v1/rate".to_string(),
    ] {
        let before = world.store.audit_entries(None, 1_000).await.unwrap().len();
        let (status, body) = call(&world.store, "GET", &path, Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let entries = world.store.audit_entries(None, 1_000).await.unwrap();
        assert_eq!(entries.len(), before + 1, "{path} wrote one audit entry");
        let entry = entries.iter().max_by_key(|entry| entry.id).unwrap();
        assert_eq!(entry.actor, "official-here", "{path}");
        assert!(entry.action.ends_with("(API)"), "{path}: {}", entry.action);
        if path.contains("/elders/") {
            assert_eq!(entry.elder_id, Some(elder), "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_an_alert_inside_and_outside_its_scope() {
    let world = world().await;
    let (here, there) = (world.here, world.there);
    // (user, sees here, sees there, may handle here)
    let matrix = [
        ("admin", true, true, true),
        ("oncall-here", true, false, true),
        ("official-here", true, false, false),
        ("visitor", true, false, false),
    ];
    for (user, sees_here, sees_there, handles_here) in matrix {
        let token = token_for(&world.store, user).await;
        let (status, list) = call(&world.store, "GET", "/api/v1/alerts?open=true", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{user}");
        let ids: Vec<i64> = list.as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
        assert_eq!(ids.contains(&here), sees_here, "{user} lists here");
        assert_eq!(ids.contains(&there), sees_there, "{user} lists there");
        let status_of = |seen: bool| if seen { StatusCode::OK } else { StatusCode::NOT_FOUND };
        assert_eq!(
            call(&world.store, "GET", &format!("/api/v1/alerts/{here}"), Some(&token), None).await.0,
            status_of(sees_here),
            "{user}"
        );
        assert_eq!(
            call(&world.store, "GET", &format!("/api/v1/alerts/{there}"), Some(&token), None).await.0,
            status_of(sees_there),
            "{user}"
        );
        if !handles_here {
            let (status, body) =
                call(&world.store, "POST", &format!("/api/v1/alerts/{here}/ack"), Some(&token), None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{user}: {body}");
        }
        if !sees_there {
            let (status, _) =
                call(&world.store, "POST", &format!("/api/v1/alerts/{there}/ack"), Some(&token), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{user} cannot even learn that alert {there} exists");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oncall_staff_acknowledge_and_resolve_with_the_handling_record() {
    let world = world().await;
    let token = token_for(&world.store, "oncall-here").await;
    let here = world.here;
    let (status, alert) = call(&world.store, "POST", &format!("/api/v1/alerts/{here}/ack"), Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(alert["acknowledged_by"], "oncall-here");
    let (status, body) = call(&world.store, "POST", &format!("/api/v1/alerts/{here}/ack"), Some(&token), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some(&*format!("alert {here} was already acknowledged by oncall-here")))
    );
    let path = format!("/api/v1/alerts/{here}/resolve");
    let (status, body) = call(&world.store, "POST", &path, Some(&token), Some(r#"{"outcome":"burnt"}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().starts_with("outcome \"burnt\" is not one of"));
    let (status, _) = call(&world.store, "POST", &path, Some(&token), Some(r#"{"outcome":"other"}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "`other` needs a note");
    let (status, alert) =
        call(&world.store, "POST", &path, Some(&token), Some(r#"{"outcome":"emergency_services","note":"119 到场"}"#))
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((alert["status"].as_str(), alert["outcome"].as_str()), (Some("resolved"), Some("emergency_services")));
    let audit: Vec<String> = world
        .store
        .audit_entries(Some(alert["elder_id"].as_i64().unwrap()), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(audit.starts_with(&["alert resolved".to_string(), "alert acknowledged".to_string()]), "{audit:?}");
}

/// True once an event stream ends (within 30 s; keep-alive comments may come first).
async fn stream_ends(mut body: axum::body::BodyDataStream) -> bool {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(None) => return true,
            Ok(Some(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_ends_when_it_expires_or_is_revoked_and_its_open_stream_with_it() {
    let world = world().await;
    // Expired: issued to last until a moment after T, long past.
    let own = token_for(&world.store, "official-here").await;
    let expired = world.store.issue_token("official-here", T + 1, T).await.unwrap();
    assert_eq!(call(&world.store, "GET", "/api/v1/elders", Some(&expired), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&world.store, "GET", "/api/v1/elders", Some(&own), None).await.0, StatusCode::OK);

    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (feed, _feed_task) = anxin_gateway::alerts::delivery::start_feed(world.store.clone(), stopped);
    let open_stream = async |token: &str| {
        let request = Request::get("/api/v1/alerts/events")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let state = anxin_console::AppState::new(world.store.clone(), Arc::new(AlertPolicy::default()), feed.clone());
        let response = anxin_console::router(metrics(), state).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().into_data_stream()
    };
    // Revoked while its stream is open: it stays open across the stream's
    // checks (every 3 s) until the revocation, then ends.
    let stream = tokio::spawn(stream_ends(open_stream(&own).await));
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert!(!stream.is_finished(), "a stream with a valid token stays open");
    let id = world
        .store
        .tokens(Some("official-here"))
        .await
        .unwrap()
        .iter()
        .find(|t| t.revoked_at.is_none() && t.expires_at == Some(i64::MAX))
        .unwrap()
        .id
        .clone();
    world.store.revoke_token(&id, "admin", T).await.unwrap();
    assert!(stream.await.unwrap(), "the revoked token's stream ended");
    assert_eq!(call(&world.store, "GET", "/api/v1/elders", Some(&own), None).await.0, StatusCode::UNAUTHORIZED);
    // Its user disabled while a stream is open.
    let oncall = token_for(&world.store, "oncall-here").await;
    let stream = tokio::spawn(stream_ends(open_stream(&oncall).await));
    world.store.set_user_disabled("oncall-here", true, "admin", T).await.unwrap();
    assert!(stream.await.unwrap(), "the disabled user's stream ended");
    assert_eq!(call(&world.store, "GET", "/api/v1/alerts", Some(&oncall), None).await.0, StatusCode::UNAUTHORIZED);
    world.store.set_user_disabled("oncall-here", false, "admin", T).await.unwrap();
    assert_eq!(
        call(&world.store, "GET", "/api/v1/alerts", Some(&oncall), None).await.0,
        StatusCode::OK,
        "enabled again"
    );
}

/// Reads server-sent events from `body` until `count` alert events came, or 10 s.
async fn read_events(
    body: &mut axum::body::BodyDataStream,
    buffer: &mut String,
    count: usize,
) -> Vec<serde_json::Value> {
    use futures_util::StreamExt;
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while events.len() < count {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|line| line.strip_prefix("data: ")) {
                events.push(serde_json::from_str(data).unwrap());
            }
        }
        if events.len() >= count {
            break;
        }
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_replays_after_a_reconnect_and_carries_only_what_the_caller_may_see() {
    let world = world().await;
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (feed, _feed_task) = anxin_gateway::alerts::delivery::start_feed(world.store.clone(), stopped);
    let token = token_for(&world.store, "oncall-here").await;
    let request = Request::get("/api/v1/alerts/events")
        .header("authorization", format!("Bearer {token}"))
        .header("last-event-id", "0")
        .body(Body::empty())
        .unwrap();
    let response = anxin_console::router(
        metrics(),
        anxin_console::AppState::new(world.store.clone(), Arc::new(AlertPolicy::default()), feed),
    )
    .oneshot(request)
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body().into_data_stream();
    let mut buffer = String::new();
    // Replayed from the database: the alert in 振兴区, not the one in 元宝区.
    let replayed = read_events(&mut body, &mut buffer, 1).await;
    assert_eq!(replayed.len(), 1);
    assert_eq!((replayed[0]["alert_id"].as_i64(), replayed[0]["action"].as_str()), (Some(world.here), Some("opened")));
    // Live: a new alert in 元宝区 is not sent; one in 振兴区 is.
    for (device, seq) in [("node-there", 2), ("node-here", 2)] {
        let help = check(
            &format!("anxin/v1/dev/{device}/event"),
            format!(r#"{{"v":1,"boot":1,"seq":{seq},"up":2,"kind":"help","state":"pressed"}}"#).as_bytes(),
        );
        anxin_gateway::ingest::commit_batch(&world.store, &AlertPolicy::default(), &[(help, T + 1_000)]).await.unwrap();
    }
    let live = read_events(&mut body, &mut buffer, 1).await;
    assert_eq!(live.len(), 1, "the live help alert in 振兴区");
    assert_eq!((live[0]["kind"].as_str(), live[0]["county"].as_str()), (Some("help"), Some("振兴区")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_and_the_bearer_scheme() {
    let world = world().await;
    let (status, doc) = call(&world.store, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/alerts",
        "/api/v1/alerts/{id}",
        "/api/v1/alerts/{id}/ack",
        "/api/v1/alerts/{id}/resolve",
        "/api/v1/alerts/events",
        "/api/v1/elders",
        "/api/v1/elders/{id}",
        "/api/v1/elders/{id}/activity",
        "/api/v1/elders/{id}/visits",
        "/api/v1/elders/{id}/reveal",
        "/api/v1/elders/{id}/visitor",
        "/api/v1/devices",
        "/api/v1/devices/{device_id}/pair",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert!(doc["paths"]["/api/v1/elders/{id}"]["put"].is_object(), "editing an elder is documented");
    let elder = &doc["components"]["schemas"]["ElderView"]["properties"];
    for field in ["citizen_id", "disability_cert", "lives_at_registered", "categories"] {
        assert!(elder[field].is_object(), "ElderView.{field}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let record = &doc["components"]["schemas"]["AlertRecord"]["properties"];
    for field in ["id", "kind", "severity", "status", "ack_ms", "outcome"] {
        assert!(record[field].is_object(), "AlertRecord.{field}");
    }
}

/// A visitor's API visit with an emergency opens the critical alert the form
/// does; an empty emergency is refused before anything is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_recorded_through_the_api_can_open_an_emergency() {
    let world = world().await;
    let elder = world.store.alert(world.here).await.unwrap().unwrap().elder_id;
    let token = token_for(&world.store, "visitor").await;
    let path = format!("/api/v1/elders/{elder}/visits");
    let today = AlertPolicy::default().today().to_string();
    let empty = format!(r#"{{"day":"{today}","mode":"phone","visitor":"李","emergency":" "}}"#);
    let (status, _) = call(&world.store, "POST", &path, Some(&token), Some(&empty)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(world.store.visits(elder).await.unwrap().is_empty(), "nothing saved");
    let body = format!(r#"{{"day":"{today}","mode":"phone","visitor":"李","emergency":"老人胸痛，已拨打120"}}"#);
    let (status, visit) = call(&world.store, "POST", &path, Some(&token), Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{visit}");
    let alerts = world
        .store
        .alerts(&AlertFilter { unresolved_only: true, elder_id: Some(elder), limit: 10, ..Default::default() })
        .await
        .unwrap();
    let emergency = alerts.iter().find(|a| a.kind == anxin_domain::alerts::AlertKind::VisitEmergency).unwrap();
    assert_eq!(emergency.severity, anxin_domain::alerts::Severity::Critical);
    let history = world.store.alert_history(emergency.id).await.unwrap();
    assert_eq!(history[0].detail.as_deref(), Some("老人胸痛，已拨打120"));
}
