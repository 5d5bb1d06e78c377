//! The console's own HTTPS: sign-in over TLS with a certificate made in the
//! test, plain HTTP sent to HTTPS, and a renewed certificate taken on SIGHUP's
//! reload without a restart.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anxin_domain::access::Role;
use anxin_testkit::{make_test_certificates, private_folder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request over TLS to `address`, trusting only the test CA in
/// `folder`; the whole response.
pub(crate) async fn https(address: SocketAddr, folder: &Path, request: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::CertificateDer::pem_file_iter(folder.join("ca.crt")).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
    let mut tls = connector.connect(name, tcp).await.expect("the handshake with the test CA's certificate");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// The value of cookie `name` set by `response`.
pub(crate) fn cookie(response: &str, name: &str) -> Option<String> {
    // Header names in any case (Go's proxies write `Set-Cookie`).
    let values =
        response.lines().filter(|line| line.to_ascii_lowercase().starts_with("set-cookie: ")).map(|line| &line[12..]);
    values.into_iter().find_map(|value| {
        value.split(';').next().and_then(|pair| pair.strip_prefix(&format!("{name}="))).map(str::to_string)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_works_over_the_console_s_own_https_and_plain_http_is_sent_there() {
    let folder = private_folder("e2e-https");
    make_test_certificates(&folder);
    let data = folder.join("data");
    let mut settings = anxin::settings::Settings::for_data_dir(&data);
    let files = anxin_console::tls::TlsFiles { cert: folder.join("server.crt"), key: folder.join("server.key") };
    settings.http_tls = Some(("127.0.0.1:0".parse().unwrap(), files));
    let app = anxin::run::App::build(&settings).await.expect("the app starts with its certificate");
    let (http, secure) = (app.http, app.https.expect("an HTTPS listener"));
    assert!(app.ready_line().contains(&format!("console on https://{secure}")), "{}", app.ready_line());
    let password = "a password of the test's own";
    app.store.add_user("tls-admin", Role::Admin, &[], password, 0).await.unwrap();
    let principal = app.store.authenticate("tls-admin", password).await.unwrap().unwrap();
    app.store.change_password(principal.user_id, password, "the admin's own password", "", 0).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    // Plain HTTP answers only with the way to HTTPS.
    let plain = crate::serve::http_get(http, "/login?next=/board").await;
    assert!(plain.starts_with("HTTP/1.1 308"), "{plain}");
    assert!(plain.contains(&format!("location: https://x:{}/login?next=/board", secure.port())), "{plain}");

    // Signing in over HTTPS: the form, then the post with its token and cookie.
    let host = format!("127.0.0.1:{}", secure.port());
    let form =
        https(secure, &folder, &format!("GET /login HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")).await;
    assert!(form.starts_with("HTTP/1.1 200"), "{form}");
    let login = cookie(&form, "anxin_login").expect("the login form's cookie");
    let csrf = form.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    let body = format!("csrf={csrf}&name=tls-admin&password=the+admin%27s+own+password&next=%2Fboard");
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {host}\r\nCookie: anxin_login={login}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let signed_in = https(secure, &folder, &request).await;
    assert!(signed_in.starts_with("HTTP/1.1 303"), "{signed_in}");
    assert!(signed_in.contains("location: /board"), "{signed_in}");
    let session = cookie(&signed_in, "anxin_session").expect("a session over HTTPS");
    let board = https(
        secure,
        &folder,
        &format!("GET /board HTTP/1.1\r\nHost: {host}\r\nCookie: anxin_session={session}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(board.starts_with("HTTP/1.1 200"), "{}", &board[..board.len().min(600)]);

    let _ = stop.send(());
    running.await.unwrap();
    let _ = std::fs::remove_dir_all(folder);
}
