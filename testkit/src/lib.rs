//! Test helpers that start the real things Anxin's tests talk to.
//!
//! [`PostgresDatabase`] is a fresh database on a real PostgreSQL server: the
//! one the test script provides (`ANXIN_TEST_POSTGRES`, a URL to the server),
//! or else the one on 127.0.0.1:5432. It is dropped with its handle.
//!
//! [`Broker`] is a real Mosquitto: the one the test script started (its
//! address in `ANXIN_TEST_MQTT`), or else a private one on a free loopback
//! port with its own folder, stopped when the handle drops. Tests never use
//! a fixed port and never sleep to wait: they poll a condition with a deadline.
//!
//! [`NatsCluster`] is a real NATS JetStream cluster (Debian's `nats-server`)
//! of N nodes on loopback, for the province's durable log.

mod nats;
pub use nats::NatsCluster;

/// Made-up township ledgers: the simulator's, so tests and `anxin ledger sample` agree.
pub use anxin_simulator::ledger;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running MQTT broker for one test.
#[derive(Debug)]
pub struct Broker {
    pub address: SocketAddr,
    /// With [`Broker::start_tls`]: the TLS listener and the CA's PEM file.
    pub tls: Option<(SocketAddr, PathBuf)>,
    process: Option<Child>,
    folder: Option<PathBuf>,
}

impl Broker {
    /// The shared broker from `ANXIN_TEST_MQTT`, or a private Mosquitto.
    pub fn start() -> Broker {
        if let Ok(address) = std::env::var("ANXIN_TEST_MQTT") {
            let address: SocketAddr =
                address.parse().unwrap_or_else(|e| panic!("ANXIN_TEST_MQTT={address:?} is not HOST:PORT: {e}"));
            return Broker { address, tls: None, process: None, folder: None };
        }
        Self::start_private()
    }

    /// Always a private Mosquitto, for tests that stop or restart the broker.
    pub fn start_private() -> Broker {
        Self::start_private_on(None)
    }

    /// A private Mosquitto on `port` (or a free one), e.g. to bring a broker
    /// up where clients have been failing to connect.
    pub fn start_private_on(port: Option<u16>) -> Broker {
        Self::launch(port, false)
    }

    /// A private Mosquitto with the persistence settings Anxin's deployment
    /// guide asks for (`persistence true`, `autosave_interval 1`), so queued
    /// QoS 1 messages for a gateway's session survive a broker restart.
    pub fn start_persistent() -> Broker {
        Self::launch(None, true)
    }

    /// A private Mosquitto whose settings also include every `.conf` file in
    /// `folder` (e.g. what `anxin devices export --mosquitto` writes).
    pub fn start_including(folder: &Path) -> Broker {
        Self::launch_with(None, false, &format!("use_username_as_clientid true\ninclude_dir {}\n", folder.display()))
    }

    /// A private Mosquitto run from a deployment's own settings file
    /// (`deploy/mosquitto.conf`): its listeners moved to free loopback ports
    /// (the plain one is `address`, the TLS one `tls`, with a fresh test CA),
    /// its persistence into a private folder, its `include_dir` to `include`.
    /// Panics if the file no longer has what is replaced, so the test follows
    /// the deployment file.
    pub fn start_deployment(settings: &str, include: &Path) -> Broker {
        let folder = broker_folder("mosquitto-deploy");
        make_test_certificates(&folder);
        let (port, tls_port) = (free_port(), free_port());
        let dir = folder.display().to_string();
        let mut config = settings.to_string();
        for (from, to) in [
            ("listener 8883\n".to_string(), format!("listener {tls_port} 127.0.0.1\n")),
            ("listener 1883 127.0.0.1\n".to_string(), format!("listener {port} 127.0.0.1\n")),
            ("/etc/mosquitto/certs/server.crt".to_string(), format!("{dir}/server.crt")),
            ("/etc/mosquitto/certs/server.key".to_string(), format!("{dir}/server.key")),
            ("/var/lib/mosquitto/".to_string(), format!("{dir}/")),
            ("include_dir /etc/mosquitto/anxin".to_string(), format!("include_dir {}", include.display())),
        ] {
            assert!(config.contains(&from), "the deployment settings no longer have {from:?}");
            config = config.replace(&from, &to);
        }
        config = format!("log_dest file {dir}/mosquitto.log\nlog_type all\n{config}");
        std::fs::write(folder.join("mosquitto.conf"), config).expect("write mosquitto.conf");
        let process = spawn_mosquitto(&folder.join("mosquitto.conf"));
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let tls_address = SocketAddr::from(([127, 0, 0, 1], tls_port));
        let broker = Broker {
            address,
            tls: Some((tls_address, folder.join("ca.crt"))),
            process: Some(process),
            folder: Some(folder.clone()),
        };
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect(address).is_ok()
                && TcpStream::connect(tls_address).is_ok()),
            "mosquitto started from the deployment settings: {}",
            std::fs::read_to_string(folder.join("mosquitto.log")).unwrap_or_default()
        );
        broker
    }

    /// Asks Mosquitto to read its password and ACL files again (SIGHUP).
    pub fn reload(&self) {
        let process = self.process.as_ref().expect("only a private broker can be reloaded");
        let _ = Command::new("kill").arg("-HUP").arg(process.id().to_string()).status();
    }

    /// A private Mosquitto with a plain listener and a TLS listener whose
    /// certificate (for IP 127.0.0.1) is signed by a fresh test CA.
    pub fn start_tls() -> Broker {
        let folder = broker_folder("mosquitto-tls");
        make_test_certificates(&folder);
        let (port, tls_port) = (free_port(), free_port());
        let config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             listener {tls_port} 127.0.0.1\ncafile {dir}/ca.crt\ncertfile {dir}/server.crt\nkeyfile {dir}/server.key\n\
             log_dest file {dir}/mosquitto.log\n",
            dir = folder.display()
        );
        std::fs::write(folder.join("mosquitto.conf"), config).expect("write mosquitto.conf");
        let process = spawn_mosquitto(&folder.join("mosquitto.conf"));
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let tls_address = SocketAddr::from(([127, 0, 0, 1], tls_port));
        let broker = Broker {
            address,
            tls: Some((tls_address, folder.join("ca.crt"))),
            process: Some(process),
            folder: Some(folder),
        };
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect(address).is_ok()
                && TcpStream::connect(tls_address).is_ok()),
            "mosquitto with TLS started"
        );
        broker
    }

    /// Stops the broker gracefully (SIGTERM: Mosquitto saves its state) and
    /// starts it again on the same port with the same folder.
    pub fn restart(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = Command::new("kill").arg("-TERM").arg(process.id().to_string()).status();
            let _ = process.wait();
        }
        let folder = self.folder.clone().expect("only a private broker can be restarted");
        self.process = Some(spawn_mosquitto(&folder.join("mosquitto.conf")));
        let address = self.address;
        assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(address).is_ok()), "mosquitto came back");
    }

    fn launch(port: Option<u16>, persistent: bool) -> Broker {
        Self::launch_with(port, persistent, "")
    }

    fn launch_with(port: Option<u16>, persistent: bool, extra: &str) -> Broker {
        let folder = broker_folder("mosquitto");
        for _attempt in 0..5 {
            let port = port.unwrap_or_else(free_port);
            let config = folder.join("mosquitto.conf");
            std::fs::write(&config, mosquitto_config(port, &folder, persistent) + extra).expect("write mosquitto.conf");
            let process = spawn_mosquitto(&config);
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            let mut broker = Broker { address, tls: None, process: Some(process), folder: Some(folder.clone()) };
            if wait_until(Duration::from_secs(10), || TcpStream::connect(address).is_ok()) {
                return broker;
            }
            // The port was taken between probing and binding: try another.
            broker.stop();
        }
        panic!("mosquitto did not start on any of 5 free ports");
    }

    pub fn host(&self) -> String {
        self.address.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `mqtt://HOST:PORT`
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.address)
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        if let Some(folder) = self.folder.take() {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}

/// Mosquitto settings for tests: loopback only, anonymous allowed,
/// TCP_NODELAY so latency figures measure Anxin and not Nagle; persistence
/// as in `deploy/mosquitto.conf` when asked for.
fn mosquitto_config(port: u16, folder: &Path, persistent: bool) -> String {
    let persistence = if persistent {
        format!("persistence true\npersistence_location {}/\nautosave_interval 1\n", folder.display())
    } else {
        "persistence false\n".to_string()
    };
    format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\n{persistence}set_tcp_nodelay true\n\
         max_queued_messages 1000000\nmax_inflight_messages 1000\nlog_dest file {}\n",
        folder.join("mosquitto.log").display()
    )
}

/// A fresh test CA in `folder` (`ca.crt`, `ca.key`) and a server certificate
/// it signed for IP 127.0.0.1 (`server.crt`, `server.key`, readable by all so
/// a broker that drops to its own user can load it).
pub fn make_test_certificates(folder: &Path) {
    let run = |args: &[&str]| {
        let status =
            Command::new("openssl").args(args).current_dir(folder).stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(status.is_ok_and(|s| s.success()), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=Anxin test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(folder.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("write ext.cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(folder.join("server.key"), std::fs::Permissions::from_mode(0o644));
    }
}

/// A private folder a Mosquitto started as root can write in after it drops
/// to its own user.
fn broker_folder(what: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let folder = private_folder(what);
    let _ = std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777));
    folder
}

/// Polls `condition` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("bind port 0").port()
}

/// A fresh folder under the system's temporary folder.
pub fn private_folder(what: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let folder = std::env::temp_dir().join(format!(
        "anxin-test-{what}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&folder).expect("create test folder");
    folder
}

fn spawn_mosquitto(config: &Path) -> Child {
    let mosquitto = find_program("mosquitto").unwrap_or_else(|| {
        panic!("mosquitto is not installed; run the test command from the README (scripts/test), which installs it")
    });
    Command::new(mosquitto)
        .arg("-c")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto")
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|folder| folder.join(name))
        .find(|candidate| candidate.is_file())
}

/// A fresh, empty PostgreSQL database for one test.
#[derive(Debug)]
pub struct PostgresDatabase {
    /// `postgres://…/anxin_test_…`
    pub url: String,
    server: String,
    name: String,
}

impl PostgresDatabase {
    /// Creates `anxin_test_{pid}_{n}` on the test server.
    pub async fn create() -> PostgresDatabase {
        use sqlx::Connection;
        let server = std::env::var("ANXIN_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("anxin_test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut connection = sqlx::PgConnection::connect(&server).await.unwrap_or_else(|e| {
            panic!(
                "no PostgreSQL at {server} ({e}); run the test command from the README (scripts/test), which starts one"
            )
        });
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
            .execute(&mut connection)
            .await
            .expect("drop stale test database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .expect("create test database");
        let url = match server.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => format!("{server}/{name}"),
        };
        PostgresDatabase { url, server, name }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop is not async: a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                use sqlx::Connection;
                if let Ok(mut connection) = sqlx::PgConnection::connect(&server).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut connection)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A JPEG of `width` × `height` as a phone's camera writes it: with an EXIF
/// segment (APP1) naming where it was taken and the phone — what a visit's
/// photo must lose before it is kept.
pub fn camera_jpeg(width: u32, height: u32) -> Vec<u8> {
    let picture =
        image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x.to_le_bytes()[0], y.to_le_bytes()[0], 120]));
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 70).encode_image(&picture).unwrap();
    let exif = b"Exif\0\0GPS 40.1302N 124.3945E Xiaomi 13";
    let mut jpeg = plain[..2].to_vec();
    jpeg.extend_from_slice(&[0xFF, 0xE1]);
    jpeg.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
    jpeg.extend_from_slice(exif);
    jpeg.extend_from_slice(&plain[2..]);
    jpeg
}
