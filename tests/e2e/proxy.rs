//! The reverse-proxy examples of the README ("Behind a reverse proxy"):
//! `deploy/nginx/anxin.conf` and `deploy/caddy/Caddyfile`, run as written —
//! only the name, the ports and the certificate's paths changed — by
//! Debian's nginx and Caddy in front of `anxin serve` on loopback with
//! `--trusted-proxy 127.0.0.1`: HTTPS with HSTS, plain HTTP sent there,
//! signing in through it, a ledger-sized upload let through, `/metrics`
//! kept to the monitoring network.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anxin_testkit::{free_port, make_test_certificates, private_folder};

use crate::https::{cookie, https};
use crate::serve::Process;

/// `text` with `from` replaced by `to`, which must be there: a test that
/// notices when the example changes shape.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example no longer has {from:?}");
    text.replace(from, to)
}

fn repository_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// A proxy process, stopped when dropped.
struct Proxy {
    child: Child,
    https: SocketAddr,
    http: SocketAddr,
}

impl Drop for Proxy {
    /// SIGTERM, so that nginx's master stops its workers (SIGKILL would
    /// leave them running, listening).
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn wait_for_port(address: SocketAddr, what: &str, log: &Path) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(address).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not listen on {address}: {}", std::fs::read_to_string(log).unwrap_or_default());
}

fn nginx(folder: &Path, console: SocketAddr) -> Proxy {
    let (https, http) = (free_port(), free_port());
    let mut site = repository_file("deploy/nginx/anxin.conf");
    site = swap(&site, "listen 80;", &format!("listen 127.0.0.1:{http};"));
    site = swap(&site, "listen 443 ssl http2;", &format!("listen 127.0.0.1:{https} ssl http2;"));
    site = site.lines().filter(|line| !line.contains("listen [::]")).collect::<Vec<_>>().join("\n");
    site = swap(&site, "/etc/ssl/anxin/fullchain.pem", folder.join("server.crt").to_str().unwrap());
    site = swap(&site, "/etc/ssl/anxin/privkey.pem", folder.join("server.key").to_str().unwrap());
    site = swap(&site, "server 127.0.0.1:8080;", &format!("server {console};"));
    let site_file = folder.join("anxin-site.conf");
    std::fs::write(&site_file, site).unwrap();
    // The rest of what /etc/nginx/nginx.conf gives a site, in the test's folder.
    let f = folder.display();
    let main = format!(
        "daemon off;\nuser root;\npid {f}/nginx.pid;\nerror_log {f}/nginx-error.log;\nevents {{}}\n\
         http {{\n  access_log off;\n  client_body_temp_path {f}/body;\n  proxy_temp_path {f}/proxy;\n  \
         fastcgi_temp_path {f}/fastcgi;\n  uwsgi_temp_path {f}/uwsgi;\n  scgi_temp_path {f}/scgi;\n  \
         include {};\n}}\n",
        site_file.display()
    );
    let main_file = folder.join("nginx.conf");
    std::fs::write(&main_file, main).unwrap();
    let checked = Command::new("nginx")
        .args(["-t", "-c", main_file.to_str().unwrap()])
        .output()
        .expect("nginx (Debian's nginx; scripts/test installs it)");
    assert!(checked.status.success(), "nginx -t: {}", crate::text(&checked.stderr));
    let child = Command::new("nginx")
        .args(["-c", main_file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proxy = Proxy { child, https: ([127, 0, 0, 1], https).into(), http: ([127, 0, 0, 1], http).into() };
    wait_for_port(proxy.https, "nginx", &folder.join("nginx-error.log"));
    proxy
}

fn caddy(folder: &Path, console: SocketAddr) -> Proxy {
    let (https, http) = (free_port(), free_port());
    let mut site = repository_file("deploy/caddy/Caddyfile");
    site = swap(
        &site,
        "anxin.example.gov.cn {",
        &format!(
            "https://127.0.0.1:{https} {{\n\ttls {} {}",
            folder.join("server.crt").display(),
            folder.join("server.key").display()
        ),
    );
    site = swap(&site, "reverse_proxy 127.0.0.1:8080 {", &format!("reverse_proxy {console} {{"));
    // Caddy's own state in the test's folder, its ports the test's.
    let global = format!(
        "{{\n\tadmin off\n\thttp_port {http}\n\thttps_port {https}\n\tstorage file_system {}\n}}\n\n",
        folder.join("caddy-data").display()
    );
    let file = folder.join("Caddyfile");
    std::fs::write(&file, global + &site).unwrap();
    let log = folder.join("caddy.log");
    let child = Command::new("caddy")
        .args(["run", "--config", file.to_str().unwrap(), "--adapter", "caddyfile"])
        .env("HOME", folder)
        .env("XDG_DATA_HOME", folder.join("xdg-data"))
        .env("XDG_CONFIG_HOME", folder.join("xdg-config"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("caddy (Debian's caddy; scripts/test installs it)");
    let proxy = Proxy { child, https: ([127, 0, 0, 1], https).into(), http: ([127, 0, 0, 1], http).into() };
    wait_for_port(proxy.https, "caddy", &log);
    proxy
}

/// `anxin serve` on loopback, believing the proxy on this machine, with an
/// admin who has set their own password.
async fn console_behind_a_proxy(folder: &Path) -> (Process, SocketAddr) {
    let data = folder.join("data");
    let data_arg = data.to_str().unwrap().to_string();
    crate::user_with_own_password(&data_arg, &["admin", "--role", "admin"]).await;
    let serve = Process::start(&[
        "--data-dir",
        &data_arg,
        "serve",
        "--mqtt-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    let console = serve.address_after("console on http://");
    (serve, console)
}

async fn through_the_proxy(proxy: &Proxy, folder: &Path) {
    let host = format!("127.0.0.1:{}", proxy.https.port());
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");

    let health = https(proxy.https, folder, &get("/healthz")).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\r\n\r\nok\n") || health.contains("ok\nschema"), "{health}");
    assert!(health.to_ascii_lowercase().contains("strict-transport-security: max-age=31536000"), "HSTS: {health}");

    // Plain HTTP is sent to HTTPS.
    let plain = crate::serve::http_get(proxy.http, "/login").await;
    assert!(plain.starts_with("HTTP/1.1 30"), "{plain}");
    assert!(plain.to_ascii_lowercase().contains("location: https://"), "{plain}");

    // Signing in through it: the form's cookie and token, then a session.
    let form = https(proxy.https, folder, &get("/login")).await;
    assert!(form.starts_with("HTTP/1.1 200"), "{form}");
    let login = cookie(&form, "anxin_login").expect("the login form's cookie");
    let csrf = form.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    let body = format!("csrf={csrf}&name=admin&password=a+password+of+their+own&next=%2Fboard");
    let post = format!(
        "POST /login HTTP/1.1\r\nHost: {host}\r\nCookie: anxin_login={login}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let signed_in = https(proxy.https, folder, &post).await;
    assert!(signed_in.starts_with("HTTP/1.1 303"), "{signed_in}");
    let session = cookie(&signed_in, "anxin_session").expect("a session through the proxy");
    let board = https(
        proxy.https,
        folder,
        &format!("GET /board HTTP/1.1\r\nHost: {host}\r\nCookie: anxin_session={session}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(board.starts_with("HTTP/1.1 200"), "{board}");

    // A township's ledger is uploaded whole: a 5 MB file reaches the console
    // (which reads it and says what is wrong with it), not the proxy's 413.
    let csrf = board.split("name=\"csrf-token\" content=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    let boundary = "anxin-proxy-test";
    let upload = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ledger.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{}\r\n--{boundary}--\r\n",
        "x,".repeat(5 << 19)
    );
    let large = format!(
        "POST /ledger/import HTTP/1.1\r\nHost: {host}\r\nCookie: anxin_session={session}\r\nx-csrf-token: {csrf}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{upload}",
        upload.len()
    );
    let answered = https(proxy.https, folder, &large).await;
    let head = &answered[..answered.len().min(300)];
    assert!(!answered.starts_with("HTTP/1.1 413"), "the proxy refused a ledger-sized upload: {head}");
    assert!(answered.contains("ledger.csv") || answered.starts_with("HTTP/1.1 422"), "the console read it: {head}");

    // /metrics only from the monitoring network.
    let metrics = https(proxy.https, folder, &get("/metrics")).await;
    assert!(metrics.starts_with("HTTP/1.1 403"), "{}", &metrics[..metrics.len().min(300)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nginx_example_serves_the_console_over_https() {
    let folder: PathBuf = private_folder("proxy-nginx");
    make_test_certificates(&folder);
    let (serve, console) = console_behind_a_proxy(&folder).await;
    let proxy = nginx(&folder, console);
    through_the_proxy(&proxy, &folder).await;
    drop(proxy);
    let _ = serve.terminate();
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caddy_example_serves_the_console_over_https() {
    let folder: PathBuf = private_folder("proxy-caddy");
    make_test_certificates(&folder);
    let (serve, console) = console_behind_a_proxy(&folder).await;
    let proxy = caddy(&folder, console);
    through_the_proxy(&proxy, &folder).await;
    drop(proxy);
    let _ = serve.terminate();
    let _ = std::fs::remove_dir_all(folder);
}
