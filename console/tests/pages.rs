//! The console's pages and API through the whole router (sessions, CSRF,
//! security headers) against a real SQLite store: every page and API call
//! for every role against an elder inside and outside its scope, sign-in,
//! sessions, masking and the audit log.

use std::sync::Arc;

use anxin_console::AppState;
use anxin_console::auth::Throttle;
use anxin_domain::access::{Region, Role};
use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::registry::NewElder;
use anxin_domain::time::Clock;
use anxin_gateway::ingest::check;
use anxin_store::{AlertFilter, Database, SessionLimits, Store};
use anxin_testkit::private_folder;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::ServiceExt;

const T: i64 = 1_780_000_000_000;
const FIRST: &str = "a one-time password";
const OWN: &str = "my own long password";

struct World {
    store: Store,
    /// The product's thresholds and clock, as the router has them.
    policy: Arc<AlertPolicy>,
    router: Router,
    folder: std::path::PathBuf,
    here: i64,
    there: i64,
    alert_here: i64,
    alert_there: i64,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

fn elder(name: &str, county: &str, citizen_id: &str) -> NewElder {
    NewElder {
        name: name.into(),
        county: county.into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: "锦山大街 12 号".into(),
        phone: Some("13904150001".into()),
        citizen_id: Some(anxin_domain::registry::CitizenId::parse(citizen_id).unwrap()),
        disability_cert: Some("21060219450312123842".into()),
        ..NewElder::default()
    }
}

fn router_for(store: &Store, policy: &Arc<AlertPolicy>, limits: SessionLimits, clock: Clock) -> Router {
    let (feed, _) = tokio::sync::broadcast::channel(16);
    let state = AppState {
        limits,
        throttle: Arc::new(Throttle::default()),
        clock,
        ..AppState::new(store.clone(), policy.clone(), feed)
    };
    anxin_console::router(anxin_console::Metrics::new(PrometheusBuilder::new().build_recorder().handle(), None), state)
}

/// A world whose console reads the time from `clock`.
async fn world_with(limits: SessionLimits, clock: Clock) -> World {
    let folder = private_folder("console-pages");
    let store = Store::open(&Database::in_data_dir(&folder)).await.unwrap();
    let here = store.add_elder(&elder("王秀英", "振兴区", "210602194503121238"), T).await.unwrap().id;
    let there = store.add_elder(&elder("李桂兰", "元宝区", "210603195001014564"), T).await.unwrap().id;
    store.pair_device("node-here", here, T).await.unwrap();
    store.pair_device("node-there", there, T).await.unwrap();
    for device in ["node-here", "node-there", "node-new"] {
        let smoke = check(
            &format!("anxin/v1/dev/{device}/event"),
            br#"{"v":1,"boot":1,"seq":1,"up":1,"kind":"smoke","state":"alarm"}"#,
        );
        anxin_gateway::ingest::commit_batch(&store, &AlertPolicy::default(), &[(smoke, T)]).await.unwrap();
    }
    let county = |name: &str| vec![Region::parse(name).unwrap()];
    store.add_user("admin", Role::Admin, &[], FIRST, T).await.unwrap();
    store.add_user("oncall", Role::Oncall, &county("振兴区"), FIRST, T).await.unwrap();
    store.add_user("official", Role::Official, &county("振兴区"), FIRST, T).await.unwrap();
    store.add_user("visitor", Role::Visitor, &[], FIRST, T).await.unwrap();
    store.add_user("visitor-2", Role::Visitor, &[], FIRST, T).await.unwrap();
    store.assign_visitor(here, "visitor", "admin", T).await.unwrap();
    let alert_of = async |elder: i64| {
        store.alerts(&AlertFilter { elder_id: Some(elder), ..Default::default() }).await.unwrap()[0].id
    };
    let (alert_here, alert_there) = (alert_of(here).await, alert_of(there).await);
    let policy = Arc::new(AlertPolicy::default());
    let router = router_for(&store, &policy, limits, clock);
    World { router, policy, store, folder, here, there, alert_here, alert_there }
}

async fn world() -> World {
    world_with(SessionLimits::default(), Clock::system()).await
}

/// What came back.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
            let value = v.strip_prefix(name)?.strip_prefix('=')?;
            Some(value.split(';').next().unwrap_or("").to_string())
        })
    }

    /// The CSRF token the page carries.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf-token\" content=\"";
        let start = self.body.find(marker).expect("the page carries a CSRF token") + marker.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20).await.unwrap();
    Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// A browser: its cookies and the CSRF token of the last page.
struct Browser<'a> {
    router: &'a Router,
    cookies: Vec<(String, String)>,
    csrf: String,
    language: &'static str,
}

impl<'a> Browser<'a> {
    fn new(router: &'a Router) -> Browser<'a> {
        Browser { router, cookies: Vec::new(), csrf: String::new(), language: "zh-CN,zh;q=0.9" }
    }

    fn keep(&mut self, answer: &Answer) {
        for value in answer.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let pair = value.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() && !value.contains("Max-Age=0") {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
        if answer.body.contains("name=\"csrf-token\"") {
            self.csrf = answer.csrf();
        }
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let cookie = self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
        Request::builder().method(method).uri(path).header("cookie", cookie).header("accept-language", self.language)
    }

    async fn get(&mut self, path: &str) -> Answer {
        let answer = send(self.router, self.request("GET", path).body(Body::empty()).unwrap()).await;
        self.keep(&answer);
        answer
    }

    /// A form post carrying the CSRF token as a plain form does.
    async fn post(&mut self, path: &str, pairs: &[(&str, &str)]) -> Answer {
        let csrf = self.csrf.clone();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(pairs);
        self.post_raw(path, &form(&all)).await
    }

    async fn post_raw(&mut self, path: &str, body: &str) -> Answer {
        let request = self
            .request("POST", path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_string()))
            .unwrap();
        let answer = send(self.router, request).await;
        self.keep(&answer);
        answer
    }

    /// A JSON call with the session cookie and the CSRF header, as the console's script makes.
    async fn json(&mut self, method: &str, path: &str, body: &str) -> Answer {
        let request = self
            .request(method, path)
            .header("content-type", "application/json")
            .header("x-csrf-token", self.csrf.clone())
            .body(Body::from(body.to_string()))
            .unwrap();
        send(self.router, request).await
    }

    async fn sign_in(&mut self, name: &str, password: &str) -> Answer {
        self.get("/login").await;
        self.post("/login", &[("name", name), ("password", password), ("next", "/")]).await
    }

    /// First sign-in: the one-time password, then one's own.
    async fn sign_in_first(&mut self, name: &str) {
        self.sign_in_first_with(name, FIRST).await;
    }

    /// Signs in with a one-time password and sets the user's own.
    async fn sign_in_first_with(&mut self, name: &str, one_time: &str) {
        let answer = self.sign_in(name, one_time).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{name}: {}", answer.body);
        let page = self.get("/board").await;
        assert_eq!(page.location(), "/password", "{name} must change the one-time password first");
        self.get("/password").await;
        let changed = self.post("/password", &[("current", one_time), ("new", OWN), ("confirm", OWN)]).await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER, "{name}: {}", changed.body);
        self.get("/my").await;
    }
}

async fn signed_in<'a>(world: &'a World, name: &str) -> Browser<'a> {
    let mut browser = Browser::new(&world.router);
    browser.sign_in_first(name).await;
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_api_call_against_every_role_inside_and_outside_its_scope() {
    let world = world().await;
    let (here, there, alert_here, alert_there) = (world.here, world.there, world.alert_here, world.alert_there);
    let elder_json =
        r#"{"name":"赵淑珍","county":"振兴区","township":"站前街道","village":"锦山社区","address":"1 号"}"#;
    // (method, path, body, expected for admin, oncall (振兴区), official (振兴区), visitor (of `here`));
    // 0: not asked (a change the admin makes elsewhere in these tests).
    let matrix: Vec<(&str, String, &str, [u16; 4])> = vec![
        ("GET", "/board".into(), "", [200, 200, 403, 403]),
        ("GET", "/board/rows".into(), "", [200, 200, 403, 403]),
        ("GET", format!("/board/alerts/{alert_here}"), "", [200, 200, 403, 403]),
        ("GET", format!("/board/alerts/{alert_there}"), "", [200, 404, 403, 403]),
        ("POST", format!("/alerts/{alert_there}/ack"), "", [0, 404, 404, 404]),
        ("POST", format!("/alerts/{alert_there}/resolve"), "outcome=visited", [0, 404, 404, 404]),
        ("POST", format!("/alerts/{alert_here}/ack"), "", [0, 0, 403, 403]),
        ("GET", "/elders".into(), "", [200, 200, 200, 200]),
        ("GET", format!("/elders/{here}"), "", [200, 200, 200, 200]),
        ("GET", format!("/elders/{there}"), "", [200, 404, 404, 404]),
        ("POST", format!("/elders/{there}/reveal"), "field=citizen_id", [200, 404, 404, 404]),
        ("POST", format!("/elders/{here}/reveal"), "field=citizen_id", [200, 200, 403, 403]),
        ("GET", "/elders/new".into(), "", [200, 403, 403, 403]),
        ("POST", "/elders".into(), "name=x", [0, 403, 403, 403]),
        ("GET", format!("/elders/{there}/edit"), "", [200, 403, 403, 403]),
        ("POST", format!("/elders/{here}"), "name=x", [0, 403, 403, 403]),
        ("POST", format!("/elders/{here}/visitor"), "visitor=visitor-2", [0, 403, 403, 403]),
        ("POST", format!("/elders/{there}/location"), "at=40.1,124.3", [303, 403, 403, 403]),
        ("POST", format!("/elders/{here}/location"), "at=north", [422, 403, 403, 403]),
        ("GET", "/visits/999999/photo".into(), "", [404, 404, 404, 404]),
        ("POST", format!("/elders/{here}/exit"), "reason=died&on=2026-01-01", [0, 403, 403, 403]),
        ("POST", format!("/elders/{there}/exit"), "reason=gone&on=2026-01-01", [422, 403, 403, 403]),
        ("POST", format!("/elders/{here}/reenter"), "on=2026-01-01", [422, 403, 403, 403]),
        ("POST", "/elders/999999/exit".into(), "reason=died&on=2026-01-01", [404, 403, 403, 403]),
        ("GET", "/devices".into(), "", [200, 403, 403, 403]),
        ("POST", "/devices/node-new/pair".into(), &*format!("elder_id={here}").leak(), [0, 403, 403, 403]),
        ("POST", "/devices/provision".into(), "device_ids=", [422, 403, 403, 403]),
        ("POST", "/devices/import".into(), "list=node-x,short", [422, 403, 403, 403]),
        ("POST", "/devices/node-none/revoke".into(), "", [404, 403, 403, 403]),
        ("GET", "/my".into(), "", [200, 200, 200, 200]),
        ("GET", "/sessions".into(), "", [200, 200, 200, 200]),
        ("GET", "/sessions?user=visitor-2".into(), "", [200, 403, 403, 403]),
        ("POST", "/sessions/revoke".into(), "user=visitor-2&handle=0000000000000000", [404, 403, 403, 403]),
        ("POST", "/sessions/revoke".into(), "handle=0000000000000000", [404, 404, 404, 404]),
        ("GET", "/audit".into(), "", [200, 403, 403, 403]),
        ("GET", "/users".into(), "", [200, 403, 403, 403]),
        ("POST", "/users/action".into(), "name=visitor-2&action=enable", [303, 403, 403, 403]),
        ("POST", "/users/action".into(), "name=nobody-here&action=disable", [404, 403, 403, 403]),
        ("POST", "/users/tokens/revoke".into(), "id=000000000000", [404, 403, 403, 403]),
        ("POST", "/users/tokens/issue".into(), "name=nobody-here&days=30", [404, 403, 403, 403]),
        ("POST", "/users/add".into(), "name=x&role=root", [422, 403, 403, 403]),
        ("POST", "/users/access".into(), "name=nobody-here&role=admin", [404, 403, 403, 403]),
        ("POST", "/users/kind".into(), "name=nobody-here&kind=grid_worker", [404, 403, 403, 403]),
        ("POST", "/users/kind".into(), "name=visitor&kind=astronaut", [422, 403, 403, 403]),
        ("GET", "/api/v1/alerts".into(), "", [200, 200, 200, 200]),
        ("GET", format!("/api/v1/alerts/{alert_there}"), "", [200, 404, 404, 404]),
        ("POST", format!("/api/v1/alerts/{alert_there}/ack"), "", [0, 404, 404, 404]),
        ("GET", "/api/v1/elders".into(), "", [200, 200, 200, 200]),
        ("GET", format!("/api/v1/elders/{here}"), "", [200, 200, 200, 200]),
        ("GET", format!("/api/v1/elders/{there}"), "", [200, 404, 404, 404]),
        ("GET", format!("/api/v1/elders/{there}/activity"), "", [200, 404, 404, 404]),
        ("GET", format!("/api/v1/elders/{there}/visits"), "", [200, 404, 404, 404]),
        ("POST", format!("/api/v1/elders/{there}/reveal"), r#"{"field":"citizen_id"}"#, [200, 404, 404, 404]),
        ("POST", format!("/api/v1/elders/{here}/reveal"), r#"{"field":"citizen_id"}"#, [200, 200, 403, 403]),
        ("POST", "/api/v1/elders".into(), elder_json, [0, 403, 403, 403]),
        ("PUT", format!("/api/v1/elders/{here}"), elder_json, [0, 403, 403, 403]),
        ("POST", format!("/api/v1/elders/{here}/visitor"), r#"{"visitor":"visitor-2"}"#, [0, 403, 403, 403]),
        ("GET", "/api/v1/devices".into(), "", [200, 403, 403, 403]),
        (
            "POST",
            "/api/v1/devices/node-new/pair".into(),
            &*format!(r#"{{"elder_id":{here}}}"#).leak(),
            [0, 403, 403, 403],
        ),
        ("GET", "/api/v1/audit".into(), "", [200, 403, 403, 403]),
        // The ledger, visits, referrals, care services, the record form, the visit rate.
        ("GET", format!("/elders/{here}/visits/new"), "", [200, 200, 403, 200]),
        ("GET", format!("/elders/{there}/visits/new"), "", [200, 404, 404, 404]),
        ("POST", format!("/elders/{here}/visits"), "day=2026-01-01&mode=remote&visitor=x", [422, 422, 403, 422]),
        ("POST", format!("/elders/{there}/visits"), "day=2026-01-01&mode=home&visitor=x", [0, 404, 404, 404]),
        ("POST", format!("/elders/{here}/referrals"), "service=care&need=", [422, 422, 403, 422]),
        ("POST", format!("/elders/{there}/referrals"), "service=care&need=x", [0, 404, 404, 404]),
        ("POST", format!("/elders/{here}/services"), "day=someday", [422, 422, 403, 422]),
        ("POST", format!("/elders/{there}/services"), "day=2026-01-01&description=x&served_by=y", [0, 404, 404, 404]),
        ("GET", format!("/elders/{here}/form"), "", [200, 200, 200, 200]),
        ("GET", format!("/elders/{there}/form"), "", [200, 404, 404, 404]),
        ("GET", "/rate".into(), "", [200, 200, 200, 403]),
        ("GET", "/referrals".into(), "", [200, 200, 200, 200]),
        ("GET", "/rate?month=2026-13".into(), "", [422, 422, 422, 403]),
        ("GET", "/rate/export.xlsx".into(), "", [200, 200, 200, 403]),
        ("POST", "/rate/close".into(), "month=2026-13&county=振兴区", [403, 403, 422, 403]),
        ("GET", "/spot-checks".into(), "", [403, 403, 200, 403]),
        ("GET", "/spot-checks/report.xlsx".into(), "", [403, 403, 200, 403]),
        ("GET", "/watches".into(), "", [200, 403, 200, 403]),
        (
            "POST",
            "/watches".into(),
            "region=元宝区&kind=weather&reason=x&from=2099-01-01&to=2099-01-02",
            [303, 403, 403, 403],
        ),
        ("POST", "/watches/999999/end".into(), "", [404, 403, 404, 403]),
        ("POST", format!("/elders/{there}/away"), "until=2099-01-01&reason=住院", [0, 404, 404, 404]),
        ("POST", format!("/elders/{here}/away"), "until=2000-01-01&reason=住院", [422, 422, 403, 422]),
        ("POST", format!("/elders/{there}/back"), "", [0, 404, 404, 404]),
        ("POST", format!("/elders/{here}/contacts"), "name=x&relation=family&phone=139", [422, 422, 403, 422]),
        (
            "POST",
            format!("/elders/{there}/contacts"),
            "name=x&relation=family&phone=13904150009&consent=y",
            [0, 404, 404, 404],
        ),
        ("POST", format!("/elders/{here}/contacts/999999/remove"), "", [404, 404, 403, 404]),
        ("GET", "/duty".into(), "", [200, 200, 403, 403]),
        ("GET", "/round".into(), "", [200, 200, 200, 200]),
        ("GET", format!("/alerts/{alert_here}/print"), "", [200, 200, 403, 403]),
        ("GET", format!("/alerts/{alert_there}/print"), "", [200, 404, 404, 404]),
        ("GET", "/handover".into(), "", [200, 200, 403, 403]),
        (
            "POST",
            "/duty".into(),
            "county=元宝区&person=x&phone=13904150009&from=2099-01-01T08:00&to=2099-01-01T20:00",
            [303, 403, 403, 403],
        ),
        ("POST", "/duty".into(), "county=振兴区&person=x&phone=1&from=x&to=y", [422, 422, 403, 403]),
        ("POST", "/duty/999999/cancel".into(), "", [404, 404, 403, 403]),
        ("POST", format!("/alerts/{alert_there}/callback"), "outcome=no_answer", [0, 404, 404, 404]),
        ("POST", format!("/alerts/{alert_here}/callback"), "outcome=maybe", [422, 422, 403, 403]),
        ("POST", "/spot-checks".into(), "county=振兴区&township=站前街道&month=2026-13", [403, 403, 422, 403]),
        ("POST", "/spot-checks".into(), "county=元宝区&township=x&month=2026-05", [403, 403, 403, 403]),
        ("GET", "/spot-checks/999999".into(), "", [403, 403, 404, 403]),
        ("POST", "/spot-checks/999999/result".into(), "visit_id=1&result=confirmed", [403, 403, 404, 403]),
        ("POST", "/rate/close".into(), "month=2026-06&county=元宝区", [403, 403, 403, 403]),
        ("POST", "/rate/reopen".into(), "month=2026-06&county=振兴区", [403, 403, 422, 403]),
        ("GET", "/ledger".into(), "", [200, 403, 403, 403]),
        ("GET", "/ledger/export/ledger.csv".into(), "", [200, 403, 403, 403]),
        ("GET", "/ledger/export/ledger.xlsx".into(), "", [200, 403, 403, 403]),
        ("POST", "/ledger/import".into(), "", [422, 403, 403, 403]),
        ("GET", format!("/elders/{here}/household"), "", [200, 403, 403, 403]),
        ("POST", format!("/elders/{here}/household"), "m1_citizen_id=123", [422, 403, 403, 403]),
        (
            "POST",
            format!("/api/v1/elders/{here}/visits"),
            r#"{"day":"2026-01-01","mode":"remote","visitor":"x"}"#,
            [422, 422, 403, 422],
        ),
        (
            "POST",
            format!("/api/v1/elders/{there}/visits"),
            r#"{"day":"2026-01-01","mode":"home","visitor":"x"}"#,
            [0, 404, 404, 404],
        ),
        ("GET", format!("/api/v1/elders/{there}/referrals"), "", [200, 404, 404, 404]),
        ("POST", format!("/api/v1/elders/{here}/referrals"), r#"{"service":"care","need":" "}"#, [422, 422, 403, 422]),
        ("POST", format!("/api/v1/elders/{there}/referrals"), r#"{"service":"care","need":"x"}"#, [0, 404, 404, 404]),
        ("GET", format!("/api/v1/elders/{there}/services"), "", [200, 404, 404, 404]),
        (
            "POST",
            format!("/api/v1/elders/{here}/services"),
            r#"{"day":"x","description":"y","served_by":"z"}"#,
            [422, 422, 403, 422],
        ),
        ("GET", format!("/api/v1/elders/{here}/household"), "", [200, 200, 200, 200]),
        ("GET", format!("/api/v1/elders/{there}/household"), "", [200, 404, 404, 404]),
        ("GET", "/api/v1/rate".into(), "", [200, 200, 200, 403]),
        ("GET", "/api/v1/rate?month=2026-13".into(), "", [422, 422, 422, 403]),
    ];
    for (index, name) in ["admin", "oncall", "official", "visitor"].into_iter().enumerate() {
        let mut browser = signed_in(&world, name).await;
        // The same API calls with a bearer token must agree with the session.
        let token = world.store.issue_token(name, i64::MAX, T).await.unwrap();
        for (method, path, body, expected) in &matrix {
            let expected = expected[index];
            if expected == 0 {
                continue;
            }
            let answer = if path.starts_with("/api/") {
                let by_session = browser.json(method, path, body).await;
                let mut request = Request::builder()
                    .method(*method)
                    .uri(path.as_str())
                    .header("authorization", format!("Bearer {token}"));
                if !body.is_empty() {
                    request = request.header("content-type", "application/json");
                }
                let by_token = send(&world.router, request.body(Body::from(body.to_string())).unwrap()).await;
                assert_eq!(by_token.status, by_session.status, "{name} {method} {path}: token and session disagree");
                by_session
            } else if *method == "GET" {
                browser.get(path).await
            } else {
                let csrf = browser.csrf.clone();
                let mut pairs: Vec<(&str, &str)> = vec![("csrf", &csrf)];
                pairs.extend(body.split('&').filter(|p| !p.is_empty()).filter_map(|p| p.split_once('=')));
                browser.post_raw(path, &form(&pairs)).await
            };
            assert_eq!(
                answer.status.as_u16(),
                expected,
                "{name} {method} {path}: {}",
                &answer.body[..answer.body.len().min(300)]
            );
            if answer.status == StatusCode::NOT_FOUND {
                assert!(!answer.body.contains("李桂兰"), "{name} {method} {path}: a refusal tells nothing");
            }
        }
        if name != "visitor" {
            let rate = browser.get("/rate").await.body;
            assert!(
                rate.contains("王秀英") && rate.contains("id=\"registered\">"),
                "{name}: the unvisited elder listed"
            );
            assert_eq!(rate.contains("李桂兰"), name == "admin", "{name}: the rate counts only their regions");
        }
        let list = browser.get("/elders").await.body;
        assert!(list.contains("王秀英"), "{name} sees the elder of their scope");
        assert_eq!(list.contains("李桂兰"), name == "admin", "{name}: only the admin lists the other county's elder");
        let board_rows = browser.get("/board/rows").await.body;
        if name == "oncall" {
            assert!(board_rows.contains("王秀英") && !board_rows.contains("李桂兰"), "{board_rows}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_change_without_the_right_csrf_token_is_refused_and_changes_nothing() {
    let world = world().await;
    let mut oncall = signed_in(&world, "oncall").await;
    let path = format!("/alerts/{}/ack", world.alert_here);
    let refused = oncall.post_raw(&path, "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "no token");
    assert!(refused.body.contains("安全令牌缺失或不符"), "{}", refused.body);
    assert_eq!(oncall.post_raw(&path, "csrf=anx_forged").await.status, StatusCode::FORBIDDEN, "a wrong token");
    let mut admin = signed_in(&world, "admin").await;
    let admins_token = admin.csrf.clone();
    let answer = oncall.post_raw(&path, &form(&[("csrf", &admins_token)])).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "another session's token");
    let json = oncall.request("POST", &format!("/api/v1/alerts/{}/ack", world.alert_here)).body(Body::empty()).unwrap();
    assert_eq!(send(&world.router, json).await.status, StatusCode::FORBIDDEN, "the API by cookie needs the header too");
    let alert = world.store.alert(world.alert_here).await.unwrap().unwrap();
    assert_eq!(alert.status, anxin_domain::alerts::AlertStatus::Open, "nothing changed");
    // With the token: acknowledged, audited.
    let answer = oncall.post(&path, &[]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(world.store.alert(world.alert_here).await.unwrap().unwrap().acknowledged_by.as_deref(), Some("oncall"));
    let log = admin.get("/audit").await.body;
    assert!(log.contains("alert acknowledged"), "{log}");
    // And logging out needs the token as well.
    assert_eq!(oncall.post_raw("/logout", "").await.status, StatusCode::FORBIDDEN);
    assert_eq!(oncall.post("/logout", &[]).await.location(), "/login");
    assert_eq!(oncall.get("/board").await.location(), "/login?next=%2Fboard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_answers_alike_for_unknown_users_and_wrong_passwords_and_is_throttled() {
    let world = world().await;
    let mut browser = Browser::new(&world.router);
    let strip = |body: &str| body.split("anx_").map(|part| part.get(64..).unwrap_or("")).collect::<String>();
    let wrong = browser.sign_in("oncall", "not the password at all").await;
    let unknown = browser.sign_in("nobody-here", "not the password at all").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    assert!(wrong.body.contains("用户名或密码不正确"));
    assert_eq!(strip(&wrong.body.replace("oncall", "NAME")), strip(&unknown.body.replace("nobody-here", "NAME")));
    assert!(wrong.cookie("anxin_session").is_none());
    for _ in 0..4 {
        browser.sign_in("oncall", "still wrong, again").await;
    }
    // Locked now — even with the right password, and the same for a name that does not exist.
    let locked = browser.sign_in("oncall", FIRST).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{}", locked.body);
    assert!(locked.body.contains("分钟后再试"));
    // Without the login form's token, nothing is even tried.
    let mut stranger = Browser::new(&world.router);
    let forged = stranger.post_raw("/login", &form(&[("csrf", "anx_x"), ("name", "admin"), ("password", FIRST)])).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Another account from the same place is not locked.
    assert_eq!(browser.sign_in("admin", FIRST).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_parallel_wrong_passwords_get_five_checks_and_hold_no_other_account_back() {
    let world = world().await;
    let mut browsers = Vec::new();
    for _ in 0..40 {
        let mut browser = Browser::new(&world.router);
        browser.get("/login").await;
        browsers.push(browser);
    }
    // All at once: each is counted before its password is checked.
    let answers = futures_util::future::join_all(
        browsers
            .iter_mut()
            .map(|browser| browser.post("/login", &[("name", "oncall"), ("password", "a wrong guess!")])),
    )
    .await;
    let checked = answers.iter().filter(|answer| answer.status == StatusCode::UNAUTHORIZED).count();
    let held = answers.iter().filter(|answer| answer.status == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, held), (5, 35), "five password checks, the rest held back unchecked");
    let mut browser = Browser::new(&world.router);
    assert_eq!(browser.sign_in("oncall", FIRST).await.status, StatusCode::TOO_MANY_REQUESTS, "the right one waits too");
    assert_eq!(browser.sign_in("admin", FIRST).await.status, StatusCode::SEE_OTHER, "another account is not held");
}

/// What `oncall`, signed in afresh, gets for the elder of 元宝区.
async fn oncall_sees_there(world: &World) -> StatusCode {
    let mut browser = Browser::new(&world.router);
    let password = world.store.reset_password("oncall", "test", T).await.unwrap();
    browser.sign_in_first_with("oncall", &password).await;
    browser.get(&format!("/elders/{}", world.there)).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_ends_a_user_s_access_and_gives_a_new_one_time_password_on_the_users_page() {
    let world = world().await;
    let mut admin = signed_in(&world, "admin").await;
    let mut oncall = signed_in(&world, "oncall").await;
    let token = world.store.issue_token("oncall", i64::MAX, T).await.unwrap();
    let page = admin.get("/users").await;
    assert_eq!(page.status, StatusCode::OK);
    let row = |body: &str, name: &str| {
        let start = body.find(&format!("<tr><td>{name}</td>")).unwrap_or_else(|| panic!("{name} listed"));
        body[start..start + body[start..].find("</tr>").unwrap()].to_string()
    };
    let line = row(&page.body, "oncall");
    assert!(
        line.contains("值班人员") && line.contains("振兴区") && line.contains("\"/sessions?user=oncall\">1</a>"),
        "{line}"
    );
    let token_id = world.store.tokens(Some("oncall")).await.unwrap()[0].id.clone();
    assert!(page.body.contains(&format!("<code>{token_id}</code>")), "the token is listed by its id");
    assert!(!page.body.contains(&token[4..]), "never the token itself");
    // Disabled: the session ends at once and the token stops.
    let disabled = admin.post("/users/action", &[("name", "oncall"), ("action", "disable")]).await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER);
    assert_eq!(oncall.get("/board").await.status, StatusCode::SEE_OTHER, "signed out: sent to sign in");
    let request = Request::builder().uri("/api/v1/alerts").header("authorization", format!("Bearer {token}"));
    assert_eq!(send(&world.router, request.body(Body::empty()).unwrap()).await.status, StatusCode::UNAUTHORIZED);
    assert!(row(&admin.get("/users").await.body, "oncall").contains("已停用"));
    let yourself = admin.post("/users/action", &[("name", "admin"), ("action", "disable")]).await;
    assert_eq!(yourself.status, StatusCode::UNPROCESSABLE_ENTITY, "an admin cannot lock themselves out");
    // Enabled with a new one-time password, shown once.
    admin.post("/users/action", &[("name", "oncall"), ("action", "enable")]).await;
    let reset = admin.post("/users/action", &[("name", "oncall"), ("action", "reset")]).await;
    assert_eq!(reset.status, StatusCode::OK);
    let shown = reset.body.split("<code>").nth(1).and_then(|rest| rest.split("</code>").next()).unwrap().to_string();
    assert_eq!(shown.len(), 20, "{shown}");
    assert!(!admin.get("/users").await.body.contains(&shown), "shown once");
    let mut again = Browser::new(&world.router);
    assert_eq!(
        again.sign_in("oncall", &shown).await.status,
        StatusCode::SEE_OTHER,
        "the new one-time password signs in"
    );
    // A token with an expiry, for a user past the one-time password; shown once.
    let refused = admin.post("/users/tokens/issue", &[("name", "oncall"), ("days", "30")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "oncall has a one-time password again");
    signed_in(&world, "official").await;
    let issued = admin.post("/users/tokens/issue", &[("name", "official"), ("days", "30")]).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    let shown = issued
        .body
        .split("id=\"token\"")
        .nth(1)
        .and_then(|rest| rest.split("<code>").nth(1))
        .and_then(|rest| rest.split("</code>").next())
        .unwrap()
        .to_string();
    let request = Request::builder().uri("/api/v1/elders").header("authorization", format!("Bearer {shown}"));
    assert_eq!(send(&world.router, request.body(Body::empty()).unwrap()).await.status, StatusCode::OK);
    let expiry = world.store.tokens(Some("official")).await.unwrap()[0].expires_at.unwrap();
    assert!((expiry - world.store.tokens(Some("official")).await.unwrap()[0].created_at) == 30 * 86_400_000);
    assert_eq!(
        admin.post("/users/tokens/issue", &[("name", "official"), ("days", "0")]).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // A user added on the page, and another's regions changed.
    let added = admin.post("/users/add", &[("name", "网格员 孙"), ("role", "oncall"), ("regions", "元宝区")]).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let one_time = added.body.split("<code>").nth(1).and_then(|rest| rest.split("</code>").next()).unwrap().to_string();
    let mut new_user = Browser::new(&world.router);
    assert_eq!(new_user.sign_in("网格员 孙", &one_time).await.status, StatusCode::SEE_OTHER);
    let no_region = admin.post("/users/add", &[("name", "网格员 钱"), ("role", "oncall"), ("regions", "")]).await;
    assert_eq!(no_region.status, StatusCode::UNPROCESSABLE_ENTITY, "on-call staff need a region");
    assert_eq!(oncall_sees_there(&world).await, StatusCode::NOT_FOUND);
    let moved =
        admin.post("/users/access", &[("name", "oncall"), ("role", "oncall"), ("regions", "振兴区、元宝区")]).await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    assert_eq!(oncall_sees_there(&world).await, StatusCode::OK, "the new region applies at the next request");
    let demoted = admin.post("/users/access", &[("name", "admin"), ("role", "visitor"), ("regions", "")]).await;
    assert_eq!(demoted.status, StatusCode::UNPROCESSABLE_ENTITY, "an admin cannot demote themselves");
    let audit: Vec<String> =
        world.store.audit_entries(None, 50).await.unwrap().into_iter().map(|entry| entry.action).collect();
    for action in ["user disabled", "user enabled", "password reset", "user added", "user access changed"] {
        assert!(audit.iter().any(|a| a == action), "{action} audited: {audit:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_thousand_open_alerts_in_another_county_push_nothing_off_the_board() {
    use sqlx::Connection;
    let world = world().await;
    // 1,000 elders of 元宝区 with six open critical alerts each, all newer
    // than 振兴区's one: more than the board's limit of 5,000.
    let mut database =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", world.folder.join("anxin.sqlite3").display()))
            .await
            .unwrap();
    sqlx::raw_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
         INSERT INTO elders (name, county, township, village, address, created_at)
         SELECT 'busy-' || i, '元宝区', '站前街道', '锦山社区', '-', 0 FROM n;
         WITH kinds(kind) AS (VALUES ('help'), ('inactivity'), ('cold'), ('heat'), ('door_night'), ('tamper'))
         INSERT INTO alerts (elder_id, kind, severity, status, county, township, village, detail, opened_at, updated_at)
         SELECT e.id, k.kind, 'critical', 'open', e.county, e.township, e.village, 'busy', 4000000000000, 4000000000000
         FROM elders e, kinds k WHERE e.name LIKE 'busy-%';",
    )
    .execute(&mut database)
    .await
    .unwrap();
    database.close().await.unwrap();
    let mut oncall = signed_in(&world, "oncall").await;
    let board = oncall.get("/board").await;
    assert_eq!(board.status, StatusCode::OK);
    assert!(board.body.contains(&format!("/board/alerts/{}", world.alert_here)), "振兴区's own alert is on its board");
    assert!(!board.body.contains("busy-"), "nothing of 元宝区");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_board_s_open_alert_stream() {
    use futures_util::StreamExt;
    let world = world().await;
    let mut oncall = signed_in(&world, "oncall").await;
    oncall.get("/board").await;
    let request = oncall.request("GET", "/api/v1/alerts/events").body(Body::empty()).unwrap();
    let response = world.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let ended = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, body.next()).await {
                Ok(None) => return true,
                Ok(Some(_)) => {}
                Err(_) => return false,
            }
        }
    });
    let out = oncall.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert!(ended.await.unwrap(), "the signed-out session's stream ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_get_a_new_id_at_sign_in_and_end_when_idle() {
    // The console's clock stands still from now on, until the test moves it.
    let clock = Clock::set_at(chrono::Utc::now().timestamp_millis());
    let limits = SessionLimits { idle_ms: 15 * 60_000, absolute_ms: 12 * 3_600_000, ..SessionLimits::default() };
    let world = world_with(limits, clock.clone()).await;
    let mut browser = Browser::new(&world.router);
    browser.get("/login").await;
    let first = browser.post("/login", &[("name", "official"), ("password", FIRST)]).await;
    let first_id = first.cookie("anxin_session").unwrap();
    let set_cookie = first.headers.get("set-cookie").unwrap().to_str().unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    browser.get("/login").await;
    let second = browser.post("/login", &[("name", "official"), ("password", FIRST)]).await;
    assert_ne!(second.cookie("anxin_session").unwrap(), first_id, "a new id at every sign-in");
    let mut replay = Browser::new(&world.router);
    replay.cookies.push(("anxin_session".into(), first_id));
    assert_eq!(replay.get("/elders").await.status, StatusCode::SEE_OTHER, "the old session ended");
    assert_eq!(browser.get("/elders").await.location(), "/password", "the one-time password must be changed first");
    clock.advance(limits.idle_ms - 1);
    assert_eq!(browser.get("/elders").await.location(), "/password", "not yet idle too long");
    clock.advance(limits.idle_ms + 1);
    assert!(browser.get("/elders").await.location().starts_with("/login"), "idle too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifying_numbers_are_masked_and_each_reveal_is_audited() {
    let world = world().await;
    let mut oncall = signed_in(&world, "oncall").await;
    let page = oncall.get(&format!("/elders/{}", world.here)).await;
    assert!(page.body.contains("2106**********1238"), "masked on screen");
    assert!(!page.body.contains("210602194503121238"), "never whole on the page");
    assert!(!page.body.contains("21060219450312123842"), "certificate number masked too");
    let api = oncall.json("GET", &format!("/api/v1/elders/{}", world.here), "").await;
    assert!(api.body.contains("2106**********1238") && !api.body.contains("210602194503121238"), "{}", api.body);
    let revealed = oncall.post(&format!("/elders/{}/reveal", world.here), &[("field", "citizen_id")]).await;
    assert!(revealed.body.contains("210602194503121238"), "{}", revealed.body);
    let mut visitor = signed_in(&world, "visitor").await;
    let visitor_page = visitor.get(&format!("/elders/{}", world.here)).await.body;
    assert!(visitor_page.contains("2106**********1238") && !visitor_page.contains("显示完整号码"));
    let entries = world.store.audit_entries(Some(world.here), 100).await.unwrap();
    let reveal = entries.iter().find(|e| e.action == "citizen ID revealed").expect("the reveal is audited");
    assert_eq!(reveal.actor, "oncall");
    assert!(entries.iter().any(|e| e.action == "elder page read" && e.actor == "visitor"), "page reads are audited");
    let mut admin = signed_in(&world, "admin").await;
    assert!(admin.get("/audit").await.body.contains("citizen ID revealed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_the_security_headers_and_speak_english_when_asked() {
    let world = world().await;
    let mut browser = signed_in(&world, "oncall").await;
    let page = browser.get(&format!("/elders/{}", world.here)).await;
    let header = |name: &str| page.headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert_eq!(header("cache-control"), "no-store");
    let csp = header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(!page.body.contains("<script>"), "no inline script");
    assert!(page.body.contains("<svg"), "the activity chart is drawn on the server");
    assert!(page.body.contains("基本情况"));
    let asset = browser.get("/static/htmx-2.0.11.min.js").await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(asset.headers.get("cache-control").unwrap().to_str().unwrap().contains("max-age"));
    browser.language = "en-GB,en;q=0.9";
    assert!(browser.get("/board").await.body.contains("Alert board"), "Accept-Language picks English");
    let switch = browser.get("/lang?to=zh-CN&back=/board").await;
    assert_eq!(switch.location(), "/board");
    assert!(browser.get("/board").await.body.contains("告警台"), "the cookie outranks Accept-Language");
    assert_eq!(browser.get("/lang?to=en&back=//evil.example").await.location(), "/", "only local paths");
    assert_eq!(browser.get("/lang?to=en&back=/%5Cevil.example/x").await.location(), "/", "a browser reads /\\ as //");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_refuses_a_bad_field_by_name_and_keeps_what_was_typed() {
    let world = world().await;
    let mut admin = signed_in(&world, "admin").await;
    admin.get("/elders/new").await;
    let fields = [
        ("name", "赵淑珍"),
        ("county", "振兴区"),
        ("township", "站前街道"),
        ("village", "六道口社区"),
        ("address", "六道口 8 号"),
        ("phone", "0415-2170478"),
        ("emergency_contact", "赵明"),
        ("emergency_phone", "13904150003"),
        ("categories", "living_alone"),
        ("categories", "dependent"),
        ("lives_at_registered", "no"),
    ];
    let bad = [&fields[..], &[("citizen_id", "210603195001014565")]].concat();
    let refused = admin.post("/elders", &bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("身份证号: ends in 5, but its check digit is 4"), "{}", refused.body);
    assert!(refused.body.contains("六道口 8 号"), "what was typed stays in the form");
    let young = [&fields[..], &[("citizen_id", "110105200001010014")]].concat();
    let refused = admin.post("/elders", &young).await;
    assert!(refused.body.contains("未满 60 周岁") || refused.body.contains("check digit"), "{}", refused.body);
    // 李桂兰 holds this ID already: one citizen ID, one elder.
    let taken = [&fields[..], &[("citizen_id", "210603195001014564")]].concat();
    let refused = admin.post("/elders", &taken).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert!(refused.body.contains("该公民身份号码已登记，老年人编号 2"), "{}", refused.body);
    assert!(refused.body.contains("六道口 8 号"), "what was typed stays in the form");
    // A certificate must be the elder's own (its first 18 characters).
    let not_theirs =
        [&fields[..], &[("citizen_id", "210603195001014572"), ("disability_cert", "21060319500101456442")]].concat();
    let refused = admin.post("/elders", &not_theirs).await;
    assert!(refused.body.contains("残疾人证号中的身份号码与该老人的公民身份号码不符"), "{}", refused.body);
    let no_category: Vec<_> = fields.iter().filter(|(k, _)| *k != "categories").copied().collect();
    let refused = admin.post("/elders", &[&no_category[..], &[("citizen_id", "210603195001014572")]].concat()).await;
    assert!(refused.body.contains("请至少勾选一个类别"), "{}", refused.body);
    let left_behind = [&fields[..], &[("citizen_id", "210603195001014572"), ("categories", "left_behind")]].concat();
    let refused = admin.post("/elders", &left_behind).await;
    assert!(refused.body.contains("留守老人须填写子女外出时间"), "{}", refused.body);
    // Grade 2 (the last digit): 重残 follows from the certificate.
    let good =
        [&fields[..], &[("citizen_id", "210603195001014572"), ("disability_cert", "21060319500101457242")]].concat();
    let created = admin.post("/elders", &good).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let id: i64 = created.location().trim_start_matches("/elders/").parse().unwrap();
    let elder = world.store.elder(id).await.unwrap().unwrap();
    assert_eq!(elder.categories, "living_alone,dependent,severely_disabled");
    assert!(!elder.lives_at_registered);
    assert_eq!(elder.phone.as_deref(), Some("0415-2170478"), "one normal form");
    // Edit, assign a visitor, pair the unclaimed device.
    let form = admin.get(&format!("/elders/{id}/edit")).await.body;
    assert!(!form.contains("210603195001014572") && form.contains("2106**********4572"), "masked on the edit form too");
    // Left empty, the numbers on record stay.
    let edited =
        [&fields[..], &[("address", "六道口 10 号"), ("citizen_id", ""), ("categories", "severely_disabled")]].concat();
    assert_eq!(admin.post(&format!("/elders/{id}"), &edited).await.status, StatusCode::SEE_OTHER);
    let after = world.store.elder(id).await.unwrap().unwrap();
    assert_eq!(after.address, "六道口 10 号");
    assert_eq!(after.citizen_id.as_deref(), Some("210603195001014572"), "kept");
    assert_eq!(
        admin.post(&format!("/elders/{id}/visitor"), &[("visitor", "visitor-2")]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(world.store.visitors_of(id).await.unwrap(), vec!["visitor-2".to_string()]);
    let refused = admin.post(&format!("/elders/{id}/visitor"), &[("visitor", "oncall")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(admin.get("/devices").await.body.contains("node-new"));
    let id_text = id.to_string();
    assert_eq!(admin.post("/devices/node-new/pair", &[("elder_id", &id_text)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(world.store.device("node-new").await.unwrap().unwrap().elder_id, Some(id));
    let again = admin.post("/devices/node-new/pair", &[("elder_id", &id_text)]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "paired already");
    // The API refuses a bad row by field, too.
    let refused = admin
        .json(
            "POST",
            "/api/v1/elders",
            r#"{"name":"x","county":"振兴区","township":"t","village":"v","address":"a","phone":"call me"}"#,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("phone"), "{}", refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oncall_acknowledges_and_resolves_from_the_board_and_the_shift_figure_counts_it() {
    let world = world().await;
    let mut oncall = signed_in(&world, "oncall").await;
    let board = oncall.get("/board").await.body;
    assert!(board.contains("王秀英") && board.contains("烟雾报警") && !board.contains("李桂兰"));
    let refresh: i64 = board.split("data-refresh-ms=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
    assert!(refresh < SessionLimits::default().idle_ms, "an open board refreshes before its session would go idle");
    let detail = oncall.get(&format!("/board/alerts/{}", world.alert_here)).await.body;
    assert!(detail.contains("传感器 node-here 烟雾报警（"), "the engine's explanation in Chinese: {detail}");
    assert!(!detail.contains("smoke alarm on sensor"), "not its English");
    assert!(
        detail.contains("锦山大街 12 号") && detail.contains("13904150001") && detail.contains("visitor"),
        "{detail}"
    );
    let ack = oncall
        .request("POST", &format!("/alerts/{}/ack", world.alert_here))
        .header("hx-request", "true")
        .header("x-csrf-token", oncall.csrf.clone())
        .body(Body::empty())
        .unwrap();
    let answer = send(&world.router, ack).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "htmx gets no page, only the event");
    assert!(answer.headers.get("hx-trigger").unwrap().to_str().unwrap().contains("board-changed"));
    let twice = oncall.post(&format!("/alerts/{}/ack", world.alert_here), &[]).await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    let no_note = oncall.post(&format!("/alerts/{}/resolve", world.alert_here), &[("outcome", "other")]).await;
    assert_eq!(no_note.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_note.body.contains("请填写处置说明"), "{}", no_note.body);
    let resolved = oncall
        .post(&format!("/alerts/{}/resolve", world.alert_here), &[("outcome", "false_alarm"), ("note", "做饭油烟")])
        .await;
    assert_eq!(resolved.status, StatusCode::SEE_OTHER);
    let alert = world.store.alert(world.alert_here).await.unwrap().unwrap();
    assert_eq!(
        (alert.outcome, alert.note.as_deref()),
        (Some(anxin_domain::alerts::Outcome::FalseAlarm), Some("做饭油烟"))
    );
    let rows = oncall.get("/board/rows").await.body;
    assert!(rows.contains("board-empty") || rows.contains("没有待处理的告警"), "{rows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_recorded_in_the_console_counts_in_the_rate_and_prints_on_the_form() {
    let world = world().await;
    let mut visitor = signed_in(&world, "visitor").await;
    let path = format!("/elders/{}/visits", world.here);
    let form_page = visitor.get(&format!("{path}/new")).await;
    assert!(form_page.body.contains("较安全") && form_page.body.contains("无变化"), "the form's own choices");
    // The product's day (+08:00), not UTC's: after 16:00 UTC they differ.
    let today = world.policy.today().format("%Y-%m-%d").to_string();
    let fields = [
        ("day", today.as_str()),
        ("mode", "home"),
        ("started", "09:30"),
        ("visitor", "李探访"),
        ("mobility", "worse"),
        ("gas", "unsafe"),
        ("electricity", "safe"),
        ("needs", "需要安装燃气报警器"),
    ];
    let wrong = visitor.post(&path, &[&fields[..], &[("illness", "serious")]].concat()).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("请填写严重疾病名称") && wrong.body.contains("需要安装燃气报警器"), "kept input");
    let recorded = visitor.post(&path, &fields).await;
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
    let visits = world.store.visits(world.here).await.unwrap();
    assert_eq!(visits.len(), 1);
    assert!(recorded.location().contains(&format!("found={}", visits[0].id)), "a problem found offers a referral");
    let page = visitor.get(recorded.location()).await.body;
    assert!(page.contains("燃气安全 不安全") && page.contains("本次探访发现问题"), "{page}");

    let visit_id = visits[0].id.to_string();
    let referred = visitor
        .post(
            &format!("/elders/{}/referrals", world.here),
            &[("service", "home_adaptation"), ("need", "安装燃气报警器"), ("visit_id", &visit_id)],
        )
        .await;
    assert_eq!(referred.status, StatusCode::SEE_OTHER, "{}", referred.body);
    let referral = world.store.referrals(world.here).await.unwrap()[0].id;
    let mut official = signed_in(&world, "official").await;
    let waiting = official.get("/referrals").await.body;
    assert!(waiting.contains("王秀英") && waiting.contains("适老化改造") && waiting.contains("(1)"), "{waiting}");
    let refused = official.post(&format!("/referrals/{referral}/done"), &[("outcome", "x")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "officials only read");
    let done = visitor.post(&format!("/referrals/{referral}/done"), &[("outcome", "已安装")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(world.store.referrals(world.here).await.unwrap()[0].outcome.as_deref(), Some("已安装"));
    assert!(official.get("/referrals").await.body.contains("没有待办的需求转介"), "done leaves the list");
    let served = visitor
        .post(
            &format!("/elders/{}/services", world.here),
            &[("day", &today), ("description", "上门助浴"), ("served_by", "张护理"), ("satisfaction", "satisfied")],
        )
        .await;
    assert_eq!(served.status, StatusCode::SEE_OTHER, "{}", served.body);

    // The official's county: 1 registered, 1 visited; the admin's: 2 and 1.
    let rate = official.get("/rate").await.body;
    assert!(rate.contains("id=\"registered\">1<") && rate.contains("id=\"visited\">1<"), "{rate}");
    assert!(rate.contains("id=\"rate\" class=\"ok\">100%<"), "{rate}");
    let mut admin = signed_in(&world, "admin").await;
    let rate = admin.get("/rate").await.body;
    assert!(rate.contains("id=\"registered\">2<") && rate.contains(">50%<"), "{rate}");
    let unvisited = &rate[rate.find("id=\"unvisited\"").unwrap()..];
    assert!(unvisited.contains("李桂兰") && !unvisited.contains("王秀英"), "{unvisited}");
    let token = world.store.issue_token("official", i64::MAX, T).await.unwrap();
    let request = Request::builder().uri("/api/v1/rate").header("authorization", format!("Bearer {token}"));
    let api = send(&world.router, request.body(Body::empty()).unwrap()).await;
    let figures: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!((figures["registered"].as_i64(), figures["visited"].as_i64()), (Some(1), Some(1)), "{figures}");
    assert_eq!(figures["rate_per_mille"], 1000);
    let export = admin.get("/rate/export.xlsx").await;
    assert_eq!(export.headers["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");

    // The printed form: the visitor's copy masks the ID, the admin's does not.
    let printed = visitor.get(&format!("/elders/{}/form", world.here)).await.body;
    assert!(printed.contains("特殊困难老年人探访关爱服务记录表") && printed.contains("2106**********1238"));
    assert!(
        printed.contains("☑ 不安全") && printed.contains("☑ 上门探访") && printed.contains("上门助浴"),
        "{printed}"
    );
    assert!(printed.contains("满意"));
    let whole = admin.get(&format!("/elders/{}/form", world.here)).await.body;
    assert!(whole.contains("210602194503121238"));
    let audit: Vec<String> =
        world.store.audit_entries(Some(world.here), 100).await.unwrap().into_iter().map(|e| e.action).collect();
    assert!(audit.iter().any(|a| a == "record form printed with whole ID numbers"), "{audit:?}");

    // Parts 2-4 edited by the admin show on the page, the member's ID masked.
    admin.get(&format!("/elders/{}/household", world.here)).await;
    let household = [
        ("disabled", "yes"),
        ("m1_name", "王秀英"),
        ("m1_sex", "female"),
        ("m1_citizen_id", "210602194503121238"),
        ("m1_relation", "本人"),
        ("m1_support", "destitute"),
        ("water_safe", "yes"),
        ("power_safe", "no"),
        ("income", "1200.5"),
        ("help_orgs", "community"),
        ("help_orgs", "volunteer"),
        ("help_person", "刘主任"),
    ];
    let bad = admin
        .post(&format!("/elders/{}/household", world.here), &[&household[..], &[("income", "lots")]].concat())
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let saved = admin.post(&format!("/elders/{}/household", world.here), &household).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let details = world.store.elder_details(world.here).await.unwrap().unwrap();
    assert_eq!(details.living.monthly_income_fen, Some(120_050));
    assert_eq!(details.help.orgs.len(), 2);
    assert_eq!(details.members[0].citizen_id.as_deref(), Some("210602194503121238"));
    let page = visitor.get(&format!("/elders/{}", world.here)).await.body;
    assert!(page.contains("特困人员") && page.contains("2106**********1238") && !page.contains("210602194503121238"));
    let printed = admin.get(&format!("/elders/{}/form", world.here)).await.body;
    assert!(printed.contains("☑ 乡镇(街道)、村(居)民委员会") && printed.contains("1200.5"), "{printed}");
}

/// Posts `bytes` as the ledger page's file field named `name`.
async fn upload_ledger(admin: &mut Browser<'_>, name: &str, bytes: Vec<u8>) -> Answer {
    upload_ledger_with(admin, name, bytes, false).await
}

/// …with the preview button pressed, if `preview`.
async fn upload_ledger_with(admin: &mut Browser<'_>, name: &str, bytes: Vec<u8>, preview: bool) -> Answer {
    let boundary = "anxin-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    if preview {
        body.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"preview\"\r\n\r\n1").as_bytes(),
        );
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let request = admin
        .request("POST", "/ledger/import")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .header("x-csrf-token", admin.csrf.clone())
        .body(Body::from(body))
        .unwrap();
    send(admin.router, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_file_built_to_exhaust_memory_is_refused_and_the_console_carries_on() {
    let world = world().await;
    let mut admin = signed_in(&world, "admin").await;
    admin.get("/ledger").await;
    // 1.5 KB holding cells A1 and XFD1048576: read as a dense range it asks
    // for 2^34 cells and aborts the process (broker and ingest with it).
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "被探访人姓名").unwrap();
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    let bomb = workbook.save_to_buffer().unwrap();
    assert!(bomb.len() < 10_000);
    let refused = upload_ledger(&mut admin, "township.xlsx", bomb).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("工作表超过 50000 行"), "{}", refused.body);
    // More than the file limit is refused while it arrives, with the limit named.
    let huge = upload_ledger(&mut admin, "township.csv", vec![b'a'; 21 << 20]).await;
    assert_eq!(huge.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(huge.body.contains("文件超过 20 MB"), "{}", &huge.body[..huge.body.len().min(2_000)]);
    assert_eq!(world.store.elders().await.unwrap().len(), 2, "nothing imported");
    assert_eq!(admin.get("/ledger").await.status, StatusCode::OK, "the console carries on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_of_some_columns_changes_only_those_and_keeps_the_visitor() {
    let world = world().await;
    let mut admin = signed_in(&world, "admin").await;
    admin.get("/ledger").await;
    let before = world.store.elder(world.here).await.unwrap().unwrap();
    assert!(before.phone.is_some());
    // A township's file of part 1's columns only, the values unchanged but the address.
    let export = admin.get("/ledger/export/ledger.csv").await.body;
    let rows = anxin_domain::ledger::sheet::read(
        export.as_bytes(),
        anxin_domain::ledger::sheet::Format::Csv,
        &anxin_domain::ledger::sheet::Limits::LEDGER,
    )
    .unwrap();
    let part_one = ["编号", "县(市、区)", "乡镇(街道)", "村(居)", "家庭住址", "被探访人姓名", "公民身份号码"];
    let keep: Vec<usize> = rows[0]
        .iter()
        .enumerate()
        .filter(|(_, cell)| part_one.contains(&cell.text().as_str()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keep.len(), part_one.len(), "{:?}", rows[0]);
    let mut partial: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            keep.iter().map(|i| row.get(*i).map(anxin_domain::ledger::sheet::Cell::text).unwrap_or_default()).collect()
        })
        .collect();
    let address = part_one.iter().position(|h| *h == "家庭住址").unwrap();
    let line = partial.iter().position(|row| row[0] == world.here.to_string()).unwrap();
    partial[line][address] = "锦山大街 14 号".into();
    let csv = anxin_domain::ledger::sheet::write(&partial, anxin_domain::ledger::sheet::Format::Csv, "x").unwrap();
    let previewed = upload_ledger_with(&mut admin, "part-one.csv", csv.clone(), true).await;
    assert_eq!(previewed.status, StatusCode::OK, "{}", previewed.body);
    assert!(previewed.body.contains("预览（尚未保存）"), "{}", previewed.body);
    let changes = &previewed.body[previewed.body.find("id=\"import-changes\"").expect("the changes listed")..];
    assert!(changes.contains("王秀英") && changes.contains("家庭住址"), "{changes}");
    assert_eq!(world.store.elder(world.here).await.unwrap().unwrap().address, before.address, "nothing saved");
    let imported = upload_ledger(&mut admin, "part-one.csv", csv).await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.body);
    let after = world.store.elder(world.here).await.unwrap().unwrap();
    assert_eq!(after.address, "锦山大街 14 号", "the column the file carries is the file's");
    assert_eq!((after.phone, after.emergency_phone), (before.phone, before.emergency_phone), "the rest stays");
    assert_eq!(world.store.visitors_of(world.here).await.unwrap(), ["visitor"], "the assignment stays");
    let mut visitor = signed_in(&world, "visitor").await;
    assert_eq!(visitor.get(&format!("/elders/{}", world.here)).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_imports_a_ledger_file_and_a_bad_one_changes_nothing() {
    let world = world().await;
    let mut admin = signed_in(&world, "admin").await;
    admin.get("/ledger").await;
    let rows = anxin_testkit::ledger::township_ledger(150, "visitor-2");
    let csv = anxin_domain::ledger::sheet::write(&rows, anxin_domain::ledger::sheet::Format::Csv, "x").unwrap();
    let mut bad = rows.clone();
    bad[2][7] = "12345".into();
    let bad = anxin_domain::ledger::sheet::write(&bad, anxin_domain::ledger::sheet::Format::Csv, "x").unwrap();
    let refused = upload_ledger(&mut admin, "ledger.csv", bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("第 3 行，公民身份号码「12345」：为 5 位，应为 18 位"), "{}", refused.body);
    assert_eq!(world.store.elders().await.unwrap().len(), 2, "nothing imported");
    let wrong_kind = upload_ledger(&mut admin, "ledger.txt", csv.clone()).await;
    assert_eq!(wrong_kind.status, StatusCode::UNPROCESSABLE_ENTITY);
    let imported = upload_ledger(&mut admin, "ledger.csv", csv.clone()).await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.body);
    assert!(imported.body.contains("新增 150"), "{}", imported.body);
    assert!(imported.body.contains("未使用的列: 序号"), "{}", imported.body);
    let again = upload_ledger(&mut admin, "ledger.csv", csv).await;
    assert!(again.body.contains("新增 0, 更新 0, 未变 150"), "{}", again.body);
    let export = admin.get("/ledger/export/ledger.csv").await;
    assert!(export.body.starts_with("\u{feff}编号,县(市、区)"), "{}", &export.body[..80]);
    assert_eq!(export.body.lines().count(), 153, "header, 2 elders of the world, 150 imported");
    let page = admin.get("/ledger").await.body;
    // 120 of the 150 and 李桂兰 have no visitor.
    assert!(page.contains("尚未确定探访责任人的家庭 (121)"), "{page}");
    // The elder list comes a hundred at a time.
    let first = admin.get("/elders").await.body;
    assert!(first.contains("1 / 2") && first.matches("<tr><td><a href=\"/elders/").count() == 100, "{first}");
    let second = admin.get("/elders?page=2").await.body;
    assert_eq!(second.matches("<tr><td><a href=\"/elders/").count(), 52);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_heightened_watch_the_rate_page_lists_who_is_due_a_visit_by_a_person() {
    let world = world().await;
    let mut official = signed_in(&world, "official").await;
    let rate = official.get("/rate").await.body;
    assert!(!rate.contains("id=\"due\""), "no watch, no due list");
    let now = anxin_store::now_ms();
    let region = anxin_store::RegionFilter { county: Some("振兴区".into()), ..Default::default() };
    world.store.start_heightened_watch(&region, now + 86_400_000, "寒潮", "admin", now).await.unwrap();
    let rate = official.get("/rate").await.body;
    let due = &rate[rate.find("id=\"due\"").expect("a due list under the watch")..];
    let due = &due[..due.find("</section>").unwrap()];
    assert!(due.contains("王秀英") && due.contains("寒潮"), "{due}");
    assert!(!due.contains("李桂兰"), "only the official's regions");
    // A phone call today is a visit by a person: no longer due.
    let mut visitor = signed_in(&world, "visitor").await;
    visitor.get(&format!("/elders/{}/visits/new", world.here)).await;
    // The product's day (+08:00), not UTC's: after 16:00 UTC they differ.
    let today = world.policy.today().format("%Y-%m-%d").to_string();
    let called = visitor
        .post(&format!("/elders/{}/visits", world.here), &[("day", &today), ("mode", "phone"), ("visitor", "李")])
        .await;
    assert_eq!(called.status, StatusCode::SEE_OTHER, "{}", called.body);
    let rate = official.get("/rate").await.body;
    assert!(!rate.contains("id=\"due\""), "nobody due once called");
}

/// The admin provisions devices on the devices page: each secret is shown
/// once, only its hash is stored, and a revoked device shows as revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_provisions_and_revokes_devices_on_the_devices_page() {
    let world = world().await;
    let mut admin = signed_in(&world, "admin").await;
    admin.get("/devices").await;
    let shown = admin.post("/devices/provision", &[("device_ids", "node-p1, node-p2\nnode-p3")]).await;
    assert_eq!(shown.status, StatusCode::OK);
    let secrets: Vec<(String, String)> = ["node-p1", "node-p2", "node-p3"]
        .iter()
        .map(|id| {
            let row = &shown.body[shown.body.find(&format!("<td>{id}</td>")).unwrap_or_else(|| panic!("{id}"))..];
            let secret = &row[row.find("<code>").unwrap() + 6..row.find("</code>").unwrap()];
            ((*id).to_string(), secret.to_string())
        })
        .collect();
    for (id, secret) in &secrets {
        assert_eq!(secret.len(), 32, "128 bits in hex");
        let stored = world.store.broker_identity(id).await.unwrap().unwrap();
        assert!(anxin_domain::identity::verify_secret(secret, &stored.secret_hash), "{id}: the hash of what was shown");
        assert!(!stored.secret_hash.contains(secret.as_str()));
    }
    let page = admin.get("/devices").await.body;
    assert!(page.contains(r#"data-device="node-p2""#), "listed");
    assert!(!page.contains(&secrets[1].1), "a secret is never shown again");
    // Provisioned twice: refused, and nothing changes.
    let again = admin.post("/devices/provision", &[("device_ids", "node-p9 node-p1")]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", again.body);
    assert!(world.store.broker_identity("node-p9").await.unwrap().is_none(), "all or nothing");
    let bad = admin.post("/devices/provision", &[("device_ids", "Node/1")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A vendor's list: whole, or nothing with the line at fault.
    let list = "device_id,secret\nnode-v1,vendor-secret-000001\nnode-v2,short";
    let refused = admin.post("/devices/import", &[("list", list)]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("line 3"), "{}", refused.body);
    assert!(world.store.broker_identity("node-v1").await.unwrap().is_none(), "nothing from a list with a problem");
    let list = "device_id,secret\nnode-v1,vendor-secret-000001\nnode-v2,vendor-secret-000002";
    assert_eq!(admin.post("/devices/import", &[("list", list)]).await.status, StatusCode::SEE_OTHER);
    let v2 = world.store.broker_identity("node-v2").await.unwrap().unwrap();
    assert!(anxin_domain::identity::verify_secret("vendor-secret-000002", &v2.secret_hash));
    assert_eq!(admin.post("/devices/node-p2/revoke", &[]).await.status, StatusCode::SEE_OTHER);
    assert!(world.store.broker_identity("node-p2").await.unwrap().unwrap().revoked_at.is_some());
    let audit = world.store.audit_entries(None, 10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "device revoked on the broker" && e.actor == "admin"), "{audit:?}");
}

/// The admin records on the elder page that an elder died: the home's
/// device is released, its alert resolved, the page says so and offers a
/// re-entry; a wrong date is refused in the reader's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_records_an_exit_on_the_elder_page_and_the_elder_can_re_enter() {
    let world = world().await;
    let mut admin = signed_in(&world, "admin").await;
    let here = world.here;
    let page = admin.get(&format!("/elders/{here}")).await.body;
    assert!(page.contains("id=\"exit-form\"") && !page.contains("id=\"left-banner\""), "an enrolled elder");
    let today = world.policy.today();
    let tomorrow = (today + chrono::Days::new(1)).to_string();
    let refused = admin.post(&format!("/elders/{here}/exit"), &[("reason", "died"), ("on", &tomorrow)]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains(&format!("日期 {tomorrow} 尚未到来")), "{}", refused.body);
    let before_enrolment =
        admin.post(&format!("/elders/{here}/exit"), &[("reason", "died"), ("on", "2020-01-01")]).await;
    assert!(before_enrolment.body.contains("早于该老人的在册日期"), "{}", before_enrolment.body);

    let today = today.to_string();
    let left = admin.post(&format!("/elders/{here}/exit"), &[("reason", "died"), ("on", &today)]).await;
    assert_eq!((left.status, left.location()), (StatusCode::SEE_OTHER, &*format!("/elders/{here}")), "{}", left.body);
    let page = admin.get(&format!("/elders/{here}")).await.body;
    assert!(
        page.contains("id=\"left-banner\"") && page.contains(&format!("{today} 退出：死亡（admin 登记）")),
        "{page}"
    );
    assert!(page.contains("id=\"reenter-form\"") && !page.contains("id=\"exit-form\""));
    assert_eq!(world.store.device("node-here").await.unwrap().unwrap().elder_id, None, "the device is released");
    let alert = world.store.alert(world.alert_here).await.unwrap().unwrap();
    assert_eq!(alert.outcome, Some(anxin_domain::alerts::Outcome::ElderLeft));
    let list = admin.get("/elders").await.body;
    assert!(list.contains(&format!("已退出 {today}")), "the list marks who left");
    let rate = admin.get("/rate").await.body;
    assert!(
        rate.contains("id=\"rate-rule\"") && rate.contains("退出当日或之前已被探访时计入"),
        "the rule is on the page"
    );
    assert!(rate.contains("id=\"left-unvisited\""), "the departed, unvisited elder is listed apart");
    let again = admin.post(&format!("/elders/{here}/exit"), &[("reason", "moved"), ("on", &today)]).await;
    assert!(again.body.contains("已退出关爱名单"), "{}", again.body);
    // Re-entry must come after the exit day.
    let same_day = admin.post(&format!("/elders/{here}/reenter"), &[("on", &today)]).await;
    assert!(same_day.body.contains("须晚于退出日期"), "{}", same_day.body);
    let periods = world.store.enrolments(here).await.unwrap();
    assert_eq!(periods.len(), 1);
    let entries = world.store.audit_entries(Some(here), 20).await.unwrap();
    assert!(entries.iter().any(|e| e.action == "elder left" && e.actor == "admin"), "audited as the admin");
}

/// The county's official closes last month on the rate page; a visit the
/// visitor records afterwards for that month is 补录, listed apart, and
/// changes the figure only once the official reopens the month. The export
/// says who closed it and when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_county_official_closes_a_month_and_a_late_visit_waits_for_the_reopening() {
    let world = world().await;
    let mut official = signed_in(&world, "official").await;
    let last_month = anxin_domain::visits::Month::of(world.policy.today()).previous();
    let month = last_month.to_string();
    let page = official.get(&format!("/rate?month={month}")).await.body;
    assert!(page.contains("id=\"closing\"") && page.contains("action=\"/rate/close\""), "the official may close it");
    let this_month = anxin_domain::visits::Month::of(world.policy.today()).to_string();
    let early = official.post("/rate/close", &[("month", &this_month), ("county", "振兴区")]).await;
    assert_eq!(early.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(early.body.contains("尚未结束"), "{}", early.body);
    let closed = official.post("/rate/close", &[("month", &month), ("county", "振兴区")]).await;
    assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
    let page = official.get(&format!("/rate?month={month}")).await.body;
    assert!(page.contains("已关账：official"), "{page}");
    assert!(page.contains("id=\"visited\">0<"), "nobody visited last month");
    let again = official.post("/rate/close", &[("month", &month), ("county", "振兴区")]).await;
    assert!(again.body.contains("该县已关账"), "{}", again.body);

    let mut visitor = signed_in(&world, "visitor").await;
    visitor.get(&format!("/elders/{}/visits/new", world.here)).await;
    let day = last_month.first_day().to_string();
    let late = visitor
        .post(&format!("/elders/{}/visits", world.here), &[("day", &day), ("mode", "phone"), ("visitor", "李")])
        .await;
    assert_eq!(late.status, StatusCode::SEE_OTHER, "{}", late.body);
    let page = official.get(&format!("/rate?month={month}")).await.body;
    assert!(page.contains("id=\"visited\">0<"), "the closed figure stands");
    let listed = &page[page.find("id=\"late\"").expect("the late visit is listed apart")..];
    assert!(listed.contains("王秀英") && listed.contains(&day) && listed.contains("visitor"), "{listed}");
    let elder_page = official.get(&format!("/elders/{}", world.here)).await.body;
    assert!(elder_page.contains(&format!("{day} <span class=\"tag warn\">补录</span>")), "marked on the elder page");

    let request = official.request("GET", &format!("/rate/export.xlsx?month={month}")).body(Body::empty()).unwrap();
    let response = world.router.clone().oneshot(request).await.unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20).await.unwrap();
    use anxin_domain::ledger::sheet;
    let rows = sheet::read(&bytes, sheet::Format::Xlsx, &sheet::Limits::LEDGER).unwrap();
    let text = |cell: &sheet::Cell| match cell {
        sheet::Cell::Text(text) => text.clone(),
        other => format!("{other:?}"),
    };
    let county = rows.iter().find(|r| r.get(1).map(text).as_deref() == Some("振兴区")).expect("the county's row");
    assert_eq!((text(&county[7]), text(&county[8])), ("已关账".into(), "official".into()), "{county:?}");

    let reopened = official.post("/rate/reopen", &[("month", &month), ("county", "振兴区")]).await;
    assert_eq!(reopened.status, StatusCode::SEE_OTHER, "{}", reopened.body);
    let page = official.get(&format!("/rate?month={month}")).await.body;
    assert!(page.contains("id=\"visited\">1<"), "reopened, the late visit counts");
    let audit = world.store.audit_entries(None, 100).await.unwrap();
    let actions: Vec<&str> = audit.iter().filter(|e| e.actor == "official").map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"month closed") && actions.contains(&"month reopened"), "{actions:?}");
}

/// The rate page shows how a township's visits were made and who has had
/// no visit by a person for months (in the reader's scope only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_page_shows_the_mix_of_modes_and_who_no_person_has_visited_for_months() {
    let world = world().await;
    let mut official = signed_in(&world, "official").await;
    let section = |page: &str, id: &str| {
        let start = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
        page[start..start + page[start..].find("</section>").unwrap()].to_string()
    };
    let page = official.get("/rate").await.body;
    let quiet = section(&page, "quiet");
    assert!(quiet.contains("王秀英") && !quiet.contains("李桂兰"), "{quiet}");
    let mut visitor = signed_in(&world, "visitor").await;
    visitor.get(&format!("/elders/{}/visits/new", world.here)).await;
    let today = world.policy.today().to_string();
    let visited = visitor
        .post(
            &format!("/elders/{}/visits", world.here),
            &[("day", &today), ("mode", "home"), ("started", "10:00"), ("visitor", "李")],
        )
        .await;
    assert_eq!(visited.status, StatusCode::SEE_OTHER, "{}", visited.body);
    let no_time = visitor
        .post(&format!("/elders/{}/visits", world.here), &[("day", &today), ("mode", "home"), ("visitor", "李")])
        .await;
    assert!(no_time.body.contains("上门探访须填写开始时间"), "{}", no_time.body);
    let page = official.get("/rate").await.body;
    assert!(!section(&page, "quiet").contains("王秀英"), "visited today");
    let mix = section(&page, "mix");
    // One home visit, which the sensors (a smoke alarm at T, nothing since) do not corroborate.
    assert!(mix.contains("振兴区/站前街道</td><td>1</td>") && mix.contains("class=\"share\">0%"), "{mix}");
    let elder_page = official.get(&format!("/elders/{}", world.here)).await.body;
    assert!(elder_page.contains("传感器未见到访迹象（待抽查）"), "marked for spot-check on the elder page");
}

/// A grid worker's phone call records the plan's other contents: they show
/// on the elder page, print in the needs box of annex 1, and the rate page
/// counts the visit under the visitor's kind. Needs go to 社会救助 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_s_other_contents_and_the_visitor_s_kind_are_recorded_and_counted() {
    let world = world().await;
    let mut admin = signed_in(&world, "admin").await;
    admin.get("/users").await;
    let set = admin.post("/users/kind", &[("name", "visitor"), ("kind", "grid_worker")]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert!(admin.get("/users").await.body.contains("<option value=\"grid_worker\" selected>"), "the kind is shown");
    let mut visitor = signed_in(&world, "visitor").await;
    let path = format!("/elders/{}/visits", world.here);
    let form = visitor.get(&format!("{path}/new")).await.body;
    assert!(form.contains("方案其他探访内容") && form.contains("name=\"family_contact\""), "folded on the form");
    let today = world.policy.today().to_string();
    let recorded = visitor
        .post(
            &path,
            &[
                ("day", &today),
                ("mode", "phone"),
                ("visitor", "网格员张"),
                ("livelihood", "低保已按月发放"),
                ("family_contact", "女儿每周来电"),
                ("smoking", "yes"),
            ],
        )
        .await;
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
    assert!(recorded.location().contains("found="), "a bad safety habit is a problem found");
    let page = visitor.get(&format!("/elders/{}", world.here)).await.body;
    assert!(page.contains("亲情关怀：女儿每周来电") && page.contains("安全隐患：吸烟"), "{page}");
    let referred = visitor
        .post(
            &format!("/elders/{}/referrals", world.here),
            &[("service", "social_assistance"), ("need", "申请临时救助")],
        )
        .await;
    assert_eq!(referred.status, StatusCode::SEE_OTHER, "{}", referred.body);
    assert!(visitor.get(&format!("/elders/{}", world.here)).await.body.contains("社会救助"));
    let printed = visitor.get(&format!("/elders/{}/form", world.here)).await.body;
    let needs = &printed[printed.find("老年人服务需求").unwrap()..];
    let needs = &needs[..needs.find("</td>").unwrap()];
    assert!(
        needs.contains("生活保障：低保已按月发放") && needs.contains("安全隐患：吸烟"),
        "in the needs box: {needs}"
    );
    let mut official = signed_in(&world, "official").await;
    let rate = official.get("/rate").await.body;
    let by_kind = &rate[rate.find("id=\"by-kind\"").unwrap()..];
    let by_kind = &by_kind[..by_kind.find("</section>").unwrap()];
    assert!(by_kind.contains("<td>振兴区/站前街道</td><td>网格员</td><td>1</td>"), "{by_kind}");
}

/// A visitor who finds an emergency opens it from the visit form: a
/// critical alert of its own kind on the on-call board, escalated while
/// nobody takes it, acknowledged and resolved with its handling record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_found_on_a_visit_goes_through_an_alert_s_whole_lifecycle() {
    let world = world().await;
    let mut visitor = signed_in(&world, "visitor").await;
    let path = format!("/elders/{}/visits", world.here);
    let form = visitor.get(&format!("{path}/new")).await.body;
    assert!(form.contains("探访发现紧急情况") && form.contains("120 / 119 / 110"), "the form says what to do first");
    let today = world.policy.today().to_string();
    let visit = [("day", today.as_str()), ("mode", "phone"), ("visitor", "李"), ("emergency", "yes")];
    let unsaid = visitor.post(&path, &visit).await;
    assert_eq!(unsaid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unsaid.body.contains("请填写发现的紧急情况"), "{}", unsaid.body);
    assert!(world.store.visits(world.here).await.unwrap().is_empty(), "nothing saved");
    let opened =
        visitor.post(&path, &[&visit[..], &[("emergency_what", "老人摔倒无法起身，已拨打120")]].concat()).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let emergencies = world
        .store
        .alerts(&AlertFilter { unresolved_only: true, elder_id: Some(world.here), limit: 10, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == anxin_domain::alerts::AlertKind::VisitEmergency)
        .collect::<Vec<_>>();
    assert_eq!(emergencies.len(), 1);
    let alert = &emergencies[0];
    assert_eq!(alert.severity, anxin_domain::alerts::Severity::Critical);
    assert!(opened.location().contains(&format!("emergency={}", alert.id)), "{}", opened.location());
    let again = visitor.post(&path, &[&visit[..], &[("emergency_what", "又一次")]].concat()).await;
    assert!(again.body.contains("already open"), "one open emergency per home: {}", again.body);

    // On the on-call board, escalated while nobody takes it.
    let mut oncall = signed_in(&world, "oncall").await;
    let rows = oncall.get("/board/rows").await.body;
    assert!(rows.contains("探访发现紧急情况"), "{rows}");
    let later = anxin_store::now_ms() + 2 * world.policy.escalate_after_ms;
    anxin_gateway::alerts::timers::escalate_due_alerts(&world.store, &world.policy, later).await.unwrap();
    let escalated = world.store.alert_history(alert.id).await.unwrap().iter().any(|e| e.action == "escalated");
    assert!(escalated, "escalated like a sensor's critical alert");
    assert_eq!(oncall.post(&format!("/alerts/{}/ack", alert.id), &[]).await.status, StatusCode::SEE_OTHER);
    let resolved = oncall
        .post(&format!("/alerts/{}/resolve", alert.id), &[("outcome", "emergency_services"), ("note", "120 送医")])
        .await;
    assert_eq!(resolved.status, StatusCode::SEE_OTHER, "{}", resolved.body);
    let history: Vec<(String, Option<String>)> =
        world.store.alert_history(alert.id).await.unwrap().into_iter().map(|e| (e.action, e.actor)).collect();
    let actions: Vec<&str> = history.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions.first(), Some(&"opened"));
    assert!(actions.contains(&"acknowledged") && actions.contains(&"resolved"), "{actions:?}");
    assert_eq!(history[0].1.as_deref(), Some("visitor"), "opened by the visitor");
    let detail = oncall.get(&format!("/board/alerts/{}", alert.id)).await.body;
    assert!(detail.contains("老人摔倒无法起身"), "the visitor's words are in the handling record");
}

/// The county's official draws a spot-check of a township's month, phones
/// the elder from the list and records 不属实: flagged on the elder page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_county_official_draws_a_spot_check_and_a_visit_found_untrue_is_flagged() {
    let world = world().await;
    let mut visitor = signed_in(&world, "visitor").await;
    visitor.get(&format!("/elders/{}/visits/new", world.here)).await;
    let last_month = anxin_domain::visits::Month::of(world.policy.today()).previous();
    let day = last_month.first_day().to_string();
    let recorded = visitor
        .post(&format!("/elders/{}/visits", world.here), &[("day", &day), ("mode", "phone"), ("visitor", "李")])
        .await;
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
    let mut official = signed_in(&world, "official").await;
    let list = official.get("/spot-checks").await.body;
    assert!(list.contains("id=\"draw\""), "{list}");
    let month = last_month.to_string();
    let drawn = official
        .post("/spot-checks", &[("county", "振兴区"), ("township", "站前街道"), ("month", &month), ("seed", "5eed")])
        .await;
    assert_eq!(drawn.status, StatusCode::SEE_OTHER, "{}", drawn.body);
    let page = official.get(drawn.location()).await.body;
    assert!(page.contains("王秀英") && page.contains("tel:13904150001") && page.contains("5eed"), "{page}");
    let id = drawn.location().trim_start_matches("/spot-checks/").to_string();
    let visit_id = world.store.visits(world.here).await.unwrap()[0].id.to_string();
    let no_note = official
        .post(&format!("/spot-checks/{id}/result"), &[("visit_id", &visit_id), ("result", "not_confirmed")])
        .await;
    assert!(no_note.body.contains("须填写说明"), "{}", no_note.body);
    let saved = official
        .post(
            &format!("/spot-checks/{id}/result"),
            &[("visit_id", &visit_id), ("result", "not_confirmed"), ("note", "老人说没人打过电话")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let list = official.get("/spot-checks").await.body;
    assert!(list.contains("<td class=\"bad\">1</td>"), "the township's result counted: {list}");
    let elder_page = official.get(&format!("/elders/{}", world.here)).await.body;
    assert!(elder_page.contains("抽查不属实"), "flagged on the visit's record");
    // The townships' self-check report for the month.
    let request =
        official.request("GET", &format!("/spot-checks/report.xlsx?month={month}")).body(Body::empty()).unwrap();
    let response = world.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20).await.unwrap();
    use anxin_domain::ledger::sheet;
    let rows = sheet::read(&bytes, sheet::Format::Xlsx, &sheet::Limits::LEDGER).unwrap();
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(sheet::Cell::text).collect()).collect();
    assert_eq!(cells[0][1], "地区");
    let township = cells.iter().find(|r| r[1] == "振兴区/站前街道").expect("the township's line");
    // In the programme 1, visited 1 (100%), no visitor missing, no exit, no
    // overdue referral, 1 sampled, 1 不属实, 0 联系不上.
    assert_eq!(&township[2..], &["1", "1", "100%", "0", "0", "0", "1", "1", "0"].map(String::from), "{cells:?}");
    assert!(!cells.iter().any(|r| r[1].starts_with("元宝区")), "only the official's county");
}

/// From the 20th, the visitor's page and the rate page lead with who is
/// still unvisited this month; before it, neither does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_twentieth_the_visitor_and_the_rate_page_lead_with_who_is_unvisited() {
    // T is 2026-05-29 04:26 at +08:00: three days left in May.
    let clock = Clock::set_at(T);
    let world = world_with(SessionLimits::default(), clock.clone()).await;
    let mut visitor = signed_in(&world, "visitor").await;
    let my = visitor.get("/my").await.body;
    let reminder = &my[my.find("id=\"reminder\"").expect("a reminder on the 29th")..];
    assert!(reminder.contains("本月还剩 3 天") && reminder.contains("王秀英"), "{reminder}");
    let mut official = signed_in(&world, "official").await;
    let rate = official.get("/rate").await.body;
    let lead = rate.find("id=\"reminder\"").expect("the rate page leads with it");
    assert!(lead < rate.find("id=\"registered\"").unwrap(), "before the figures");
    assert!(rate[lead..].contains("尚有 1 位老人未探访"), "only the official's county");
    // June 10th: no reminder yet.
    clock.advance(12 * anxin_domain::time::DAY_MS);
    let mut visitor = Browser::new(&world.router);
    assert_eq!(visitor.sign_in("visitor", OWN).await.status, StatusCode::SEE_OTHER);
    let my = visitor.get("/my").await.body;
    assert!(my.contains("王秀英") && !my.contains("id=\"reminder\""), "{my}");
    let mut official = Browser::new(&world.router);
    assert_eq!(official.sign_in("official", OWN).await.status, StatusCode::SEE_OTHER);
    let rate = official.get("/rate").await.body;
    assert!(rate.contains("id=\"registered\"") && !rate.contains("id=\"reminder\""), "{rate}");
}

/// On the eve of 中秋 the official finds the festival on the heightened-watch
/// page and starts its watch for the county: the rate page lists who is due a
/// visit by a person; the watch ends from the page too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_starts_a_festival_s_heightened_watch_from_the_console() {
    // 2026-09-24 10:00 at +08:00, the eve of 中秋 (2026-09-25).
    let clock = Clock::set_at(1_790_215_200_000);
    let world = world_with(SessionLimits::default(), clock.clone()).await;
    let mut official = signed_in(&world, "official").await;
    let page = official.get("/watches").await.body;
    let festivals = &page[page.find("id=\"festivals\"").unwrap()..];
    assert!(
        festivals.contains("中秋") && festivals.contains("2026-09-25") && festivals.contains("2026-09-26"),
        "{festivals}"
    );
    assert!(official.get("/rate").await.body.find("id=\"due\"").is_none(), "no watch, no due list");
    let started = official
        .post(
            "/watches",
            &[
                ("kind", "festival"),
                ("reason", "中秋"),
                ("from", "2026-09-24"),
                ("to", "2026-09-26"),
                ("region", "振兴区"),
            ],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let watches = world.store.heightened_watches(clock.now_ms()).await.unwrap();
    assert_eq!(watches.len(), 1);
    assert_eq!((watches[0].county.as_str(), watches[0].reason.as_str()), ("振兴区", "传统节日：中秋"));
    // It ends when the 26th does (+08:00).
    assert_eq!(watches[0].ends_at, 1_790_438_400_000);
    let rate = official.get("/rate").await.body;
    let due = &rate[rate.find("id=\"due\"").expect("a due list under the watch")..];
    assert!(due.contains("王秀英") && due.contains("中秋"), "{due}");
    // The visitor sees their own elder due, on their page.
    let mut visitor = signed_in(&world, "visitor").await;
    let my = visitor.get("/my").await.body;
    let mine = &my[my.find("id=\"due\"").expect("the visitor's due list")..];
    assert!(mine.contains("王秀英") && mine.contains("中秋"), "{mine}");
    // Another county, or a made-up festival, is refused.
    let elsewhere = official
        .post(
            "/watches",
            &[
                ("kind", "weather"),
                ("reason", "寒潮"),
                ("from", "2026-09-24"),
                ("to", "2026-09-25"),
                ("region", "元宝区"),
            ],
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let made_up = official
        .post(
            "/watches",
            &[
                ("kind", "festival"),
                ("reason", "万圣节"),
                ("from", "2026-09-24"),
                ("to", "2026-09-25"),
                ("region", "振兴区"),
            ],
        )
        .await;
    assert!(made_up.body.contains("传统节日仅限春节、中秋、重阳"), "{}", made_up.body);
    // A weather warning scheduled for tomorrow shows as scheduled.
    let scheduled = official
        .post(
            "/watches",
            &[
                ("kind", "weather"),
                ("reason", "寒潮蓝色预警"),
                ("from", "2026-09-25"),
                ("to", "2026-09-27"),
                ("region", "振兴区/站前街道"),
            ],
        )
        .await;
    assert_eq!(scheduled.status, StatusCode::SEE_OTHER, "{}", scheduled.body);
    assert!(official.get("/watches").await.body.contains("（已安排）"));
    let id = watches[0].id;
    assert_eq!(official.post(&format!("/watches/{id}/end"), &[]).await.status, StatusCode::SEE_OTHER);
    let left = world.store.heightened_watches(clock.now_ms()).await.unwrap();
    assert!(left.iter().all(|w| w.id != id), "ended");
}

/// The visitor marks their elder away from the elder page and back again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visitor_marks_the_elder_away_and_back_from_the_elder_page() {
    let world = world().await;
    let mut visitor = signed_in(&world, "visitor").await;
    let page = visitor.get(&format!("/elders/{}", world.here)).await.body;
    assert!(page.contains("id=\"away-form\""), "{page}");
    let tomorrow = (world.policy.today() + chrono::Days::new(1)).to_string();
    let away = visitor.post(&format!("/elders/{}/away", world.here), &[("until", &tomorrow), ("reason", "住院")]).await;
    assert_eq!(away.status, StatusCode::SEE_OTHER, "{}", away.body);
    let now = anxin_store::now_ms();
    assert!(world.store.current_absence(world.here, now).await.unwrap().is_some());
    let page = visitor.get(&format!("/elders/{}", world.here)).await.body;
    assert!(page.contains("id=\"away\"") && page.contains("住院"), "{page}");
    assert_eq!(visitor.post(&format!("/elders/{}/back", world.here), &[]).await.status, StatusCode::SEE_OTHER);
    assert!(world.store.current_absence(world.here, anxin_store::now_ms() + 1).await.unwrap().is_none());
}

/// The visitor keeps the elder's call list: each contact with consent,
/// in order, moved and removed; the smoke order puts the first three first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_list_is_kept_in_order_on_the_elder_page_with_each_contact_s_consent() {
    let world = world().await;
    let mut visitor = signed_in(&world, "visitor").await;
    let page = visitor.get(&format!("/elders/{}", world.here)).await.body;
    assert!(page.contains("id=\"add-contact\""), "{page}");
    let path = format!("/elders/{}/contacts", world.here);
    let without_consent =
        visitor.post(&path, &[("name", "王建国"), ("relation", "family"), ("phone", "13904150002")]).await;
    assert_eq!(without_consent.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(without_consent.body.contains("未经同意不予联系"), "{}", without_consent.body);
    for (name, relation, phone) in [
        ("王建国", "family", "+86 139 0415 0002"),
        ("刘大姐", "neighbour", "0415-2170478"),
        ("张网格", "grid_worker", "13904150003"),
    ] {
        let added = visitor
            .post(
                &path,
                &[
                    ("name", name),
                    ("relation", relation),
                    ("phone", phone),
                    ("consent", "电话确认"),
                    ("from", ""),
                    ("to", ""),
                ],
            )
            .await;
        assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    }
    let list = world.store.contacts(world.here).await.unwrap();
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["王建国", "刘大姐", "张网格"]);
    assert_eq!(list[0].phone, "13904150002", "the phone's normal form");
    assert_eq!(list[0].consent_recorded_by, "visitor");
    // The grid worker first; the neighbour removed.
    let up = |id: i64| format!("{path}/{id}/up");
    visitor.post(&up(list[2].id), &[]).await;
    visitor.post(&up(list[2].id), &[]).await;
    assert_eq!(visitor.post(&format!("{path}/{}/remove", list[1].id), &[]).await.status, StatusCode::SEE_OTHER);
    let list = world.store.contacts(world.here).await.unwrap();
    let order: Vec<(&str, i64)> = list.iter().map(|c| (c.name.as_str(), c.position)).collect();
    assert_eq!(order, [("张网格", 1), ("王建国", 2)]);
    let contacts: Vec<_> = list.iter().filter_map(anxin_store::ContactRecord::contact).collect();
    let night = chrono::NaiveTime::from_hms_opt(3, 0, 0).unwrap();
    let smoke = anxin_domain::responders::call_order(anxin_domain::alerts::AlertKind::Smoke, &contacts, night);
    assert_eq!(smoke, vec![vec![0, 1]], "both at once for smoke");
    let page = visitor.get(&format!("/elders/{}", world.here)).await.body;
    assert!(page.contains("tel:13904150002") && page.contains("电话确认 — visitor"), "{page}");
    let audit = world.store.audit_entries(Some(world.here), 50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "contact added" && !e.detail.clone().unwrap_or_default().contains("139")));
}

/// A chain started on `alert` by hand (what the gateway's chain does):
/// the elder's two contacts in the first step, on-call in the second.
async fn chain_on(world: &World, alert: i64, now: i64) -> Vec<anxin_store::ResponderMessage> {
    let reached = |step, name: &str, relation: &str, phone: &str| anxin_store::Reached {
        step,
        contact_id: None,
        name: name.into(),
        relation: relation.into(),
        phone: phone.into(),
    };
    let plan = [
        reached(0, "王丽", "family", "13904150011"),
        reached(0, "李婶", "neighbour", "13904150012"),
        reached(1, "值班员小刘", "oncall", "13904159999"),
    ];
    world.store.start_chain(alert, &plan, 180_000, now).await.unwrap().expect("a chain starts");
    world.store.responder_messages(alert).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_answers_through_a_signed_link_and_the_record_tells_it() {
    let world = world().await;
    let now = anxin_store::now_ms();
    world
        .store
        .add_shift("振兴区", "值班员小刘", "13904159999", (now - 3_600_000, now + 3_600_000), "admin", now)
        .await
        .unwrap();
    let messages = chain_on(&world, world.alert_here, now).await;
    let key = world.store.link_key().await.unwrap();
    let token = anxin_domain::responders::link::token(&key, messages[0].id);
    let link = format!("/r/{token}");

    // No account: the link alone opens the page, with only what the responder needs.
    let mut phone = Browser::new(&world.router);
    let page = phone.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for expected in [
        "烟雾报警",
        "锦山社区",
        "锦山大街 12 号",
        "tel:13904150001",
        "值班员小刘",
        "tel:13904159999",
        "我去处理",
        "已到达",
        "无法前往",
    ] {
        assert!(page.body.contains(expected), "{expected:?} on the responder's page");
    }
    for never in ["王秀英", "210602194503121238", "2106**", "/board", "/elders/"] {
        assert!(!page.body.contains(never), "{never:?} is not the responder's to see");
    }
    let accepted = phone.post_raw(&link, "answer=accepted").await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    assert!(phone.get(&link).await.body.contains("您已确认前往"));
    let again = phone.post_raw(&link, "answer=accepted").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("此答复已记录过"), "{}", again.body);
    assert_eq!(phone.post_raw(&link, "answer=maybe").await.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Tampered, or another message's id under this tag: a plain refusal.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = phone.get(&format!("/r/{}", String::from_utf8(tampered).unwrap())).await;
    assert_eq!(tampered.status, StatusCode::NOT_FOUND);
    assert!(tampered.body.contains("此链接无效") && !tampered.body.contains("锦山"), "{}", tampered.body);

    // On-call sees it on the board and in the handling record, and records a call-back.
    let mut oncall = signed_in(&world, "oncall").await;
    let rows = oncall.get("/board/rows").await.body;
    assert!(rows.contains("王丽（家属）我去处理") && rows.contains("值班员小刘"), "{rows}");
    let detail = oncall.get(&format!("/board/alerts/{}", world.alert_here)).await.body;
    assert!(detail.contains("处置记录") && detail.contains("李婶 (邻居)") && detail.contains("未轮到"), "{detail}");
    let called = oncall.post(&format!("/alerts/{}/callback", world.alert_here), &[("outcome", "no_answer")]).await;
    assert_eq!(called.status, StatusCode::SEE_OTHER, "{}", called.body);
    assert!(oncall.get(&format!("/board/alerts/{}", world.alert_here)).await.body.contains("无人接听"));
    // The API: the chain and every attempt; names and phones only for those who handle alerts.
    let api = oncall.json("GET", &format!("/api/v1/alerts/{}", world.alert_here), "").await;
    let api: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!((api["chain"]["state"].as_str(), api["attempts"][0]["name"].as_str()), (Some("accepted"), Some("王丽")));
    assert!(api["attempts"][0]["accepted_at"].is_i64(), "{api}");
    let mut official = signed_in(&world, "official").await;
    let seen = official.json("GET", &format!("/api/v1/alerts/{}", world.alert_here), "").await;
    let seen: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!((seen["attempts"][0]["name"].as_str(), seen["attempts"][0]["phone"].as_str()), (Some(""), Some("")));
    assert_eq!(seen["attempts"][0]["relation"], "family");
    let month =
        chrono::DateTime::from_timestamp_millis(T).unwrap().with_timezone(&world.policy.utc_offset).format("%Y-%m");
    let rate = official.get(&format!("/rate?month={month}")).await.body;
    let response = rate.split("id=\"response\"").nth(1).unwrap().split("</section>").next().unwrap();
    assert!(response.contains("振兴区/站前街道") && !response.contains("元宝区"), "{response}");
    let printed = oncall.get(&format!("/alerts/{}/print", world.alert_here)).await.body;
    for expected in [
        "告警处置记录",
        "王秀英",
        "王丽（家属）",
        "联系人答复：我去处理",
        "值班回访老人",
        "无人接听",
        "处置人员（签字）",
    ] {
        assert!(printed.contains(expected), "{expected:?} in the printed record");
    }
    let handover = oncall.get("/handover").await.body;
    assert!(
        handover.contains("交接班") && handover.contains("王丽 (家属)") && handover.contains("我去处理"),
        "{handover}"
    );

    // Resolved: the link answers no more.
    world
        .store
        .resolve_alert(world.alert_here, "oncall", anxin_domain::alerts::Outcome::Visited, "", now)
        .await
        .unwrap();
    let expired = phone.get(&link).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(expired.body.contains("已失效"), "{}", expired.body);
    assert_eq!(phone.post_raw(&link, "answer=arrived").await.status, StatusCode::GONE);

    let audit = world.store.audit_entries(Some(world.here), 100).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|entry| entry.action.as_str()).collect();
    assert!(actions.contains(&"responder link opened") && actions.contains(&"responder answered"), "{actions:?}");
    assert!(actions.contains(&"elder called back"), "{actions:?}");

    // Guessing links: after ten bad ones an address is refused even a good link.
    let other = anxin_domain::responders::link::token(&key, messages[1].id);
    for guess in 0..10 {
        phone.get(&format!("/r/guess-{guess}")).await;
    }
    assert_eq!(phone.get(&format!("/r/{other}")).await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duty_roster_is_kept_per_county_and_the_board_shows_who_is_on_call() {
    let world = world().await;
    let mut oncall = signed_in(&world, "oncall").await;
    let board = oncall.get("/board/rows").await.body;
    assert!(board.contains("无人在班"), "{board}");
    let today = world.policy.today();
    let from = format!("{today}T00:00");
    let to = format!("{}T00:00", today.succ_opt().unwrap());
    oncall.get("/duty").await;
    let added = oncall
        .post(
            "/duty",
            &[("county", "振兴区"), ("person", "值班员小刘"), ("phone", "139 0415 9999"), ("from", &from), ("to", &to)],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let roster = oncall.get("/duty").await.body;
    assert!(roster.contains("值班员小刘") && roster.contains("13904159999") && roster.contains("在班"), "{roster}");
    assert!(oncall.get("/board/rows").await.body.contains("振兴区 · 值班员小刘"));
    // Another county's roster is not theirs; a shift backwards is refused.
    let elsewhere = oncall
        .post("/duty", &[("county", "元宝区"), ("person", "x"), ("phone", "13904150009"), ("from", &from), ("to", &to)])
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let backwards = oncall
        .post("/duty", &[("county", "振兴区"), ("person", "x"), ("phone", "13904150009"), ("from", &to), ("to", &from)])
        .await;
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(backwards.body.contains("结束须晚于开始"), "{}", backwards.body);
    let shift = world.store.duty_shifts(Some("振兴区"), 0, i64::MAX / 2).await.unwrap().remove(0);
    assert_eq!(world.store.on_duty("振兴区", anxin_store::now_ms()).await.unwrap().map(|s| s.id), Some(shift.id));
    assert!(world.store.on_duty("元宝区", anxin_store::now_ms()).await.unwrap().is_none());
    let cancelled = oncall.post(&format!("/duty/{}/cancel", shift.id), &[]).await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    assert!(world.store.on_duty("振兴区", anxin_store::now_ms()).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visitor_s_round_puts_who_is_due_first_with_the_address_for_the_map_and_a_phone_to_tap() {
    use anxin_domain::visits::{Assessment, NewVisit, Service, VisitMode};
    let world = world().await;
    let today = world.policy.today();
    let offset = world.policy.utc_offset;
    let now = anxin_store::now_ms();
    let add = async |name: &str, citizen_id: &str| {
        let id = world.store.add_elder(&elder(name, "振兴区", citizen_id), T).await.unwrap().id;
        world.store.assign_visitor(id, "visitor", "admin", T).await.unwrap();
        id
    };
    let visit = async |id: i64, on: chrono::NaiveDate| {
        let new = NewVisit {
            elder_id: id,
            day: on,
            mode: VisitMode::Home,
            started: chrono::NaiveTime::from_hms_opt(0, 0, 0),
            visitor: "探访员".into(),
            assessment: Assessment::default(),
            needs: None,
            suggestions: None,
        };
        world.store.record_visit(&new.check(today).unwrap(), "visitor", now, offset).await.unwrap();
    };
    let referral = add("孙玉兰", "210602195203150023").await;
    visit(referral, today).await;
    world.store.raise_referral(referral, None, Service::Care, "需要助餐", "visitor", now).await.unwrap();
    let remote = add("赵淑珍", "210602194811200026").await;
    visit(remote, today - chrono::Days::new(100)).await;
    let mut write = world.store.begin_write().await.unwrap();
    write
        .record_remote_visit(remote, &today.format("%Y-%m-%d").to_string(), now, "anxin", "活动正常", now)
        .await
        .unwrap();
    write.commit().await.unwrap();
    let visited = add("周桂芳", "210602195007080021").await;
    visit(visited, today).await;

    let mut visitor = signed_in(&world, "visitor").await;
    let page = visitor.get("/round").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let order: Vec<&str> =
        ["王秀英", "孙玉兰", "赵淑珍", "周桂芳"].into_iter().filter(|name| page.body.contains(*name)).collect();
    assert_eq!(order.len(), 4, "{}", page.body);
    let position = |name: &str| page.body.find(name).unwrap();
    assert!(
        position("王秀英") < position("孙玉兰")
            && position("孙玉兰") < position("赵淑珍")
            && position("赵淑珍") < position("周桂芳"),
        "unvisited, then a referral, then seen only remotely, then visited: {}",
        page.body
    );
    for expected in [
        "本月未探访，还剩",
        "有 1 项转介待办",
        "两个月以上只有远程监测",
        "本月已探访",
        "tel:13904150001",
        "geo:0,0?q=",
        "远程签到",
    ] {
        assert!(page.body.contains(expected), "{expected:?} on the round");
    }
    assert!(!page.body.contains("李桂兰"), "another visitor's elder is not on this round");
    // Staff have no round of their own: an empty page, not someone else's elders.
    let mut oncall = signed_in(&world, "oncall").await;
    assert!(!oncall.get("/round").await.body.contains("王秀英"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visitors_app_is_served_to_visitors_and_signing_out_wipes_what_the_phone_kept() {
    let world = world().await;
    let mut anyone = Browser::new(&world.router);
    let worker = anyone.get("/sw.js").await;
    assert_eq!(worker.status, StatusCode::OK);
    assert!(worker.headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(worker.body.contains("caches.open") && worker.body.contains("/round"));
    let manifest = anyone.get("/manifest.webmanifest").await;
    assert_eq!(manifest.headers["content-type"], "application/manifest+json");
    let manifest: serde_json::Value = serde_json::from_str(&manifest.body).unwrap();
    assert_eq!((manifest["start_url"].as_str(), manifest["display"].as_str()), (Some("/round"), Some("standalone")));
    assert_eq!(anyone.get("/static/icon.svg").await.status, StatusCode::OK);

    let mut visitor = signed_in(&world, "visitor").await;
    let round = visitor.get("/round").await.body;
    assert!(round.contains("rel=\"manifest\"") && round.contains("data-app=\"visitor\""));
    let mut oncall = signed_in(&world, "oncall").await;
    assert!(!oncall.get("/board").await.body.contains("rel=\"manifest\""), "the app is the visitors'");
    let out = visitor.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.headers["clear-site-data"], "\"cache\", \"storage\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_form_submitted_twice_is_recorded_once_and_the_api_says_so() {
    let world = world().await;
    let mut visitor = signed_in(&world, "visitor").await;
    let form = visitor.get(&format!("/elders/{}/visits/new", world.here)).await.body;
    let marker = "name=\"client_id\" value=\"";
    let start = form.find(marker).expect("the form carries its visit's id") + marker.len();
    let client_id = form[start..].split('"').next().unwrap().to_string();
    assert_eq!(client_id.len(), 32);
    let today = world.policy.today().format("%Y-%m-%d").to_string();
    let fields =
        [("day", today.as_str()), ("mode", "phone"), ("visitor", "visitor"), ("client_id", client_id.as_str())];
    let first = visitor.post(&format!("/elders/{}/visits", world.here), &fields).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    // The elder's page names it saved (the phone's outbox reads this).
    let landed = visitor.get(first.location()).await.body;
    assert!(landed.contains("id=\"saved-visit\"") && landed.contains("data-late=\"false\""), "{landed}");
    let again = visitor.post(&format!("/elders/{}/visits", world.here), &fields).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(again.location().contains("saved="), "{}", again.location());
    assert_eq!(world.store.visits(world.here).await.unwrap().len(), 1, "a double tap records one visit");
    let damaged = [("day", today.as_str()), ("mode", "phone"), ("visitor", "visitor"), ("client_id", "x; drop")];
    assert_eq!(
        visitor.post(&format!("/elders/{}/visits", world.here), &damaged).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // The API: 201, then 200 with the same visit.
    let body = format!(r#"{{"day":"{today}","mode":"video","visitor":"visitor","client_id":"api-visit-0001"}}"#);
    let created = visitor.json("POST", &format!("/api/v1/elders/{}/visits", world.here), &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let replayed = visitor.json("POST", &format!("/api/v1/elders/{}/visits", world.here), &body).await;
    assert_eq!(replayed.status, StatusCode::OK);
    let (a, b): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(&created.body).unwrap(), serde_json::from_str(&replayed.body).unwrap());
    assert_eq!(a["id"], b["id"]);
    assert_eq!(world.store.visits(world.here).await.unwrap().len(), 2);

    // A visit sent after its month was closed: saved, and named 补录.
    let today = world.policy.today();
    let last_month = anxin_domain::visits::Month::of(today).previous();
    let now = chrono::Utc::now().timestamp_millis();
    world.store.close_month("振兴区", last_month, "admin", now, world.policy.utc_offset).await.unwrap();
    let day = last_month.first_day().format("%Y-%m-%d").to_string();
    let fields = [("day", day.as_str()), ("mode", "phone"), ("visitor", "visitor"), ("client_id", "late-visit-0001")];
    let late = visitor.post(&format!("/elders/{}/visits", world.here), &fields).await;
    assert_eq!(late.status, StatusCode::SEE_OTHER, "{}", late.body);
    let landed = visitor.get(late.location()).await.body;
    assert!(landed.contains("data-late=\"true\"") && landed.contains("补录"), "{landed}");
}

fn borrowed<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A JPEG as a phone's camera writes it: with an EXIF segment naming where
/// it was taken and the phone.
fn camera_photo() -> String {
    use base64::Engine;
    let jpeg = anxin_testkit::camera_jpeg(1600, 1200);
    format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(jpeg))
}

/// Issue 18's evidence: the visit's end, both signatures (the elder's a
/// thumb mark), and with consent the phone's location and one photo. The
/// elder's page shows the distance from the home (never the coordinates),
/// the photo is kept without its metadata and every viewing is audited, the
/// printed form carries the signatures in their boxes; without consent
/// nothing of the location is kept, and a damaged signature is refused with
/// nothing saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_is_kept_with_its_signatures_its_times_and_with_consent_its_place_and_photo() {
    let world = world().await;
    let here = world.here;
    let mut admin = signed_in(&world, "admin").await;
    let set = admin.post(&format!("/elders/{here}/location"), &[("at", "40.1292, 124.3945")]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert_eq!(
        admin.post(&format!("/elders/{here}/location"), &[("at", "north")]).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let mut visitor = signed_in(&world, "visitor").await;
    assert_eq!(
        visitor.post(&format!("/elders/{here}/location"), &[("at", "40,124")]).await.status,
        StatusCode::FORBIDDEN,
        "the registry keeps the home's location"
    );

    // The form says what is kept and for how long: the deployment's retention.
    let form = visitor.get(&format!("/elders/{here}/visits/new")).await;
    assert!(form.body.contains("保存期限：365 天，到期自动删除"), "{}", form.body);

    let today = world.policy.today().format("%Y-%m-%d").to_string();
    let photo = camera_photo();
    let visit = |client_id: &'static str, signature: &'static str, consent: &'static str| {
        vec![
            ("day", today.clone()),
            ("mode", "home".to_string()),
            ("started", "09:00".to_string()),
            ("ended", "09:40".to_string()),
            ("visitor", "visitor".to_string()),
            ("client_id", client_id.to_string()),
            ("elder_signature", "10,10 50,50".to_string()),
            ("elder_mark", "thumb".to_string()),
            ("visitor_signature", signature.to_string()),
            ("consent_location", consent.to_string()),
            ("latitude", "40.1302".to_string()),
            ("longitude", "124.3945".to_string()),
            ("accuracy", "15".to_string()),
            ("consent_photo", consent.to_string()),
            ("photo", photo.clone()),
        ]
    };
    let path = format!("/elders/{here}/visits");
    // A damaged signature: refused, with the reason, nothing saved.
    let fields = visit("evidence-visit-0", "5,5 <script>", "yes");
    let refused = visitor.post(&path, &borrowed(&fields)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("签名无法识别"), "{}", refused.body);
    assert!(world.store.visits(here).await.unwrap().is_empty());

    let fields = visit("evidence-visit-1", "5,5 100,60;120,40", "yes");
    let saved = visitor.post(&path, &borrowed(&fields)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = visitor.get(&format!("/elders/{here}")).await.body;
    for shown in ["09:00–09:40", "已按手印", "探访人员已签字", "距住址 111 m", "/photo\""] {
        assert!(page.contains(shown), "{shown:?} on the elder's page");
    }
    assert!(!page.contains("40.1302") && !page.contains("124.3945"), "no coordinates on the page");
    let visit_id = world.store.visits(here).await.unwrap()[0].id;

    // The photo: resized, no metadata, each viewing audited; nobody else's.
    let viewed = visitor.get(&format!("/visits/{visit_id}/photo")).await;
    assert_eq!(viewed.status, StatusCode::OK);
    assert_eq!(viewed.headers["content-type"], "image/jpeg");
    let (_, kept) = world.store.visit_photo(visit_id).await.unwrap().unwrap();
    assert!(!kept.windows(4).any(|w| w == b"Exif") && !kept.windows(6).any(|w| w == b"Xiaomi"), "metadata stripped");
    let kept = image::load_from_memory_with_format(&kept, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((kept.width(), kept.height()), (1280, 960));
    let audit = world.store.audit_entries(Some(here), 20).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "visit photo viewed" && e.actor == "visitor"), "{audit:?}");
    let mut stranger = signed_in(&world, "visitor-2").await;
    assert_eq!(stranger.get(&format!("/visits/{visit_id}/photo")).await.status, StatusCode::NOT_FOUND);

    // The printed record form: both signatures in their boxes, the times.
    let form = admin.get(&format!("/elders/{here}/form")).await.body;
    assert!(
        form.contains("class=\"signature visitor-signature\"") && form.contains("d=\"M5 5 L100 60 M120 40 l0.1 0\""),
        "{form}"
    );
    assert!(form.contains("class=\"signature elder-signature thumb\"") && form.contains("（手印）"), "{form}");
    assert!(form.contains("探访时间：09:00–09:40"), "{form}");

    // Without consent: neither the location nor the photo is kept.
    let fields = visit("evidence-visit-2", "5,5 100,60", "");
    let saved = visitor.post(&path, &borrowed(&fields)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let evidence = world.store.evidence_of(here).await.unwrap();
    let second = world.store.visits(here).await.unwrap().iter().map(|v| v.id).max().unwrap();
    assert_eq!((evidence[&second].location, evidence[&second].has_photo), (None, false));
    assert!(evidence[&visit_id].location.is_some() && evidence[&visit_id].has_photo);
}

/// Issue 18: a visitor who signs in on their own phone stays signed in for
/// a working week while the desktop keeps its 30 minutes; the visitor (or
/// an admin) sees where they are signed in and revokes the phone, whose
/// next contact is signed out and told to wipe what the app kept, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_s_phone_stays_signed_in_a_working_week_and_a_revoked_one_is_wiped() {
    let clock = Clock::set_at(chrono::Utc::now().timestamp_millis());
    let world = world_with(SessionLimits::default(), clock.clone()).await;
    let mut desk = Browser::new(&world.router);
    desk.sign_in_first("visitor").await;
    let mut phone = Browser::new(&world.router);
    phone.get("/login").await;
    let signed =
        phone.post("/login", &[("name", "visitor"), ("password", OWN), ("phone", "yes"), ("next", "/round")]).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let mut oncall = signed_in(&world, "oncall").await;
    oncall.get("/login").await;
    oncall.post("/login", &[("name", "oncall"), ("password", OWN), ("phone", "yes")]).await;
    let theirs = oncall.get("/sessions").await.body;
    assert!(theirs.contains("电脑") && !theirs.contains("手机（一周）"), "a week only for a visitor's phone: {theirs}");

    // Two days later: the desk's session is over, the phone's is not.
    clock.advance(2 * 24 * 3_600_000);
    assert!(desk.get("/round").await.location().starts_with("/login"), "the desktop's 30 minutes");
    assert_eq!(phone.get("/round").await.status, StatusCode::OK, "the phone's working week");
    let listed = phone.get("/sessions").await.body;
    assert!(listed.contains("手机（一周）") && listed.contains("本机"), "{listed}");
    let marker = "data-session=\"";
    let handle = listed[listed.find(marker).unwrap() + marker.len()..].split('"').next().unwrap().to_string();
    assert_eq!(handle.len(), 16);

    // Others' sessions are an admin's to see and revoke.
    oncall.get("/login").await;
    oncall.post("/login", &[("name", "oncall"), ("password", OWN)]).await;
    assert_eq!(oncall.get("/sessions?user=visitor").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        oncall.post("/sessions/revoke", &[("user", "visitor"), ("handle", &handle)]).await.status,
        StatusCode::FORBIDDEN
    );
    let mut admin = signed_in(&world, "admin").await;
    assert!(admin.get("/users").await.body.contains("/sessions?user=visitor"));
    assert!(admin.get("/sessions?user=visitor").await.body.contains(&handle));
    let revoked = admin.post("/sessions/revoke", &[("user", "visitor"), ("handle", &handle)]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    assert_eq!(
        admin.post("/sessions/revoke", &[("user", "visitor"), ("handle", &handle)]).await.status,
        StatusCode::NOT_FOUND
    );

    // The phone's next contact: signed out and wiped, once.
    let told = phone.get("/round").await;
    assert_eq!((told.status, told.location()), (StatusCode::SEE_OTHER, "/login"));
    assert_eq!(told.headers["clear-site-data"], "\"cache\", \"storage\"");
    let again = phone.get("/round").await;
    assert!(again.location().starts_with("/login") && !again.headers.contains_key("clear-site-data"));
    let audit: Vec<_> = world.store.audit_entries(None, 50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "session revoked" && e.actor == "admin"));
}

/// Issue 18: a visit sent from a phone after the elder left the programme
/// is judged by its own date — made before the exit, it is recorded; dated
/// after, it is refused with the reason the phone shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_sent_after_the_elder_left_is_judged_by_its_own_date() {
    use anxin_domain::enrolment::{Exit, ExitReason};
    let world = world().await;
    let here = world.here;
    let mut visitor = signed_in(&world, "visitor").await;
    let today = world.policy.today();
    let yesterday = today.pred_opt().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let exit = Exit { reason: ExitReason::Moved, on: yesterday };
    world.store.record_exit(here, exit, "admin", now, world.policy.utc_offset).await.unwrap();
    let visit = |day: chrono::NaiveDate, id: &'static str| {
        vec![
            ("day", day.format("%Y-%m-%d").to_string()),
            ("mode", "phone".into()),
            ("visitor", "visitor".into()),
            ("client_id", id.into()),
        ]
    };
    let before = visit(yesterday, "left-after-visit-1");
    let saved = visitor.post(&format!("/elders/{here}/visits"), &borrowed(&before)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "made before the exit: {}", saved.body);
    let after = visit(today, "left-after-visit-2");
    let refused = visitor.post(&format!("/elders/{here}/visits"), &borrowed(&after)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("role=\"alert\"") && refused.body.contains("已于") && refused.body.contains("退出"),
        "{}",
        refused.body
    );
    assert_eq!(world.store.visits(here).await.unwrap().len(), 1);
}
