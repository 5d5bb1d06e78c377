//! End-to-end tests of the whole `anxin` binary, driven from outside as a
//! user or an operator would: real processes, a real broker.

mod alerts;
mod bench;
mod browser;
mod cluster;
mod https;
mod identity;
mod ledger;
mod package;
mod people;
mod proxy;
mod responders;
mod serve;
mod simulate;
mod walkthrough;

use std::process::{Command, Output};

/// Runs the built `anxin` binary with `args` and waits for it.
pub fn anxin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anxin")).args(args).env("ANXIN_LOG", "error").output().expect("run anxin")
}

/// Runs `anxin --data-dir DATA ARGS…` and waits for it.
pub fn anxin_at(data: &str, args: &[&str]) -> Output {
    let mut all = vec!["--data-dir", data];
    all.extend_from_slice(args);
    anxin(&all)
}

/// `elders add` for the elder most tests register (独居).
pub const ADD_WANG_XIUYING: [&str; 14] = [
    "elders",
    "add",
    "--name",
    "王秀英",
    "--county",
    "振兴区",
    "--township",
    "站前街道",
    "--village",
    "锦山社区",
    "--address",
    "锦山大街 12 号",
    "--categories",
    "living_alone",
];

/// Adds a user with `anxin users add ARGS…` and has them set their own
/// password (as their first sign-in would), so a token may be issued for them.
pub async fn user_with_own_password(data: &str, args: &[&str]) {
    let mut all = vec!["users", "add"];
    all.extend_from_slice(args);
    let added = anxin_at(data, &all);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let said = text(&added.stdout);
    let one_time = said.split("one-time password: ").nth(1).and_then(|rest| rest.lines().next()).unwrap().trim();
    let store =
        anxin_store::Store::open(&anxin_store::Database::in_data_dir(std::path::Path::new(data))).await.unwrap();
    let principal = store.authenticate(args[0], one_time).await.unwrap().expect("the one-time password signs in");
    assert!(store.change_password(principal.user_id, one_time, "a password of their own", "", 0).await.unwrap());
    store.close().await;
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Creates broker identities of `kind` (`devices` → `devices provision`,
/// `consumers` → `consumers add`) in DATA as an operator would, with the
/// secrets written to a file; returns each name's secret.
pub fn issue(data: &str, kind: &str, names: &[String]) -> std::collections::HashMap<String, String> {
    static FILES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let file = std::env::temp_dir().join(format!(
        "anxin-e2e-secrets-{}-{}.json",
        std::process::id(),
        FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let file_arg = file.to_str().unwrap();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let output = match kind {
        "devices" => anxin_at(data, &[&["devices", "provision"], &names[..], &["--out", file_arg]].concat()),
        _ => {
            assert_eq!(names.len(), 1, "one {kind} at a time");
            anxin_at(data, &[kind, "add", names[0], "--out", file_arg])
        }
    };
    assert!(output.status.success(), "{}", text(&output.stderr));
    let secrets = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let _ = std::fs::remove_file(file);
    secrets
}

/// `issue` for the simulator's devices `{prefix}-00001` … `{prefix}-{homes}`.
pub fn provision_homes(data: &str, prefix: &str, homes: usize) -> std::collections::HashMap<String, String> {
    let ids: Vec<String> = (1..=homes).map(|home| format!("{prefix}-{home:05}")).collect();
    issue(data, "devices", &ids)
}

/// `anxin serve` built in this test's process on `data` (both ports free
/// ones, read from the app, not from its output); stopped in order by
/// [`SpawnedApp::stop`].
pub async fn spawn_app(data: &std::path::Path) -> SpawnedApp {
    let settings = anxin::settings::Settings::for_data_dir(data);
    let app = anxin::run::App::build(&settings).await.expect("the app starts");
    let (mqtt, http) = (app.mqtt.expect("the embedded broker"), app.http);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    SpawnedApp { mqtt, http, stop, running }
}

#[derive(Debug)]
pub struct SpawnedApp {
    pub mqtt: std::net::SocketAddr,
    pub http: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
}

impl SpawnedApp {
    /// Stops taking messages, commits what is in flight, closes the store.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.running.await.expect("the app stops cleanly");
    }
}

/// One HTTP/1.1 exchange: `request` is "METHOD PATH"; the whole answer.
pub async fn http(address: std::net::SocketAddr, request: &str, headers: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let length = body.len();
    let head =
        format!("{request} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Content-Length: {length}\r\n\r\n");
    stream.write_all(format!("{head}{body}").as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// `name=value` of the answer's first `set-cookie`.
pub fn set_cookie(response: &str) -> String {
    let line = response.lines().find(|line| line.to_ascii_lowercase().starts_with("set-cookie: ")).unwrap();
    line["set-cookie: ".len()..].split(';').next().unwrap().to_string()
}

/// Signs `name` in through the login form over plain HTTP; the session's
/// `name=value` cookie and its CSRF token (from the first page's meta tag).
pub async fn sign_in_http(console: std::net::SocketAddr, name: &str, password: &str) -> (String, String) {
    let login = http(console, "GET /login", "", "").await;
    let cookie = set_cookie(&login);
    let csrf = cookie.split_once('=').unwrap().1.to_string();
    let encode = |text: &str| text.bytes().map(|byte| format!("%{byte:02X}")).collect::<String>();
    let body = format!("name={}&password={}&csrf={csrf}&next=%2F", encode(name), encode(password));
    let headers = format!("Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n");
    let signed_in = http(console, "POST /login", &headers, &body).await;
    assert!(signed_in.starts_with("HTTP/1.1 303"), "{name} signs in:\n{signed_in}");
    let session = set_cookie(&signed_in);
    let page = http(console, "GET /password", &format!("Cookie: {session}\r\n"), "").await;
    let csrf = page.split("name=\"csrf-token\" content=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    (session, csrf.to_string())
}
