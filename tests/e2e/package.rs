//! Issue 19: installing Anxin on a server — the Debian package of the binary
//! the tests built (`scripts/package --binary`), its systemd unit checked by
//! `systemd-analyze verify`, the example settings with every setting, and
//! `serve` speaking systemd's notify protocol (ready, the watchdog fed).

use std::process::Command;
use std::time::Duration;

use anxin_testkit::private_folder;

use crate::{anxin_at, text};

fn repository() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_package_holds_the_binary_the_unit_and_the_settings_and_the_unit_verifies() {
    let out = private_folder("package");
    let built = Command::new(repository().join("scripts/package"))
        .args(["--binary", env!("CARGO_BIN_EXE_anxin"), "--out", out.to_str().unwrap(), "--compression", "none"])
        .output()
        .expect("run scripts/package");
    assert!(built.status.success(), "{}", text(&built.stderr));
    let deb = text(&built.stdout).trim().to_string();
    let contents = Command::new("dpkg-deb").args(["--contents", &deb]).output().unwrap();
    let contents = text(&contents.stdout);
    for path in [
        "./usr/bin/anxin",
        "./lib/systemd/system/anxin.service",
        "./lib/systemd/system/anxin-backup.service",
        "./lib/systemd/system/anxin-backup.timer",
        "./etc/anxin/anxin.toml",
        "./usr/share/doc/anxin/README.md",
    ] {
        assert!(contents.contains(path), "{path} in the package:\n{contents}");
    }
    let info = text(&Command::new("dpkg-deb").args(["--info", &deb]).output().unwrap().stdout);
    for field in ["Package: anxin", "Depends: adduser", "postinst", "conffiles"] {
        assert!(info.contains(field), "{field}:\n{info}");
    }
    let conffiles = Command::new("dpkg-deb").args(["--ctrl-tarfile", &deb]).output().unwrap();
    assert!(conffiles.status.success());

    // The unit as installed, checked by systemd (its ExecStart pointed at
    // the binary the tests built: verify checks that it exists).
    let unit = std::fs::read_to_string(repository().join("deploy/anxin.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=always",
        "StateDirectory=anxin",
        "User=anxin",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "LimitNOFILE=",
        // postinst makes /etc/anxin 0750 (root:anxin): systemd must not
        // find it otherwise at every start (seen on a fresh install).
        "ConfigurationDirectoryMode=0750",
    ] {
        assert!(unit.contains(line), "{line} in the unit");
    }
    let postinst = std::fs::read_to_string(repository().join("deploy/debian/postinst")).unwrap();
    assert!(postinst.contains("chmod 0750 /etc/anxin"), "postinst and the unit agree on the folder's mode");
    assert!(postinst.contains("enable --now anxin-backup.timer"), "the nightly backup runs from the install on");
    let mut checked = Vec::new();
    for name in ["anxin.service", "anxin-backup.service", "anxin-backup.timer"] {
        let unit = std::fs::read_to_string(repository().join("deploy").join(name)).unwrap();
        let here = out.join(name);
        std::fs::write(&here, unit.replace("/usr/bin/anxin", env!("CARGO_BIN_EXE_anxin"))).unwrap();
        checked.push(here.to_str().unwrap().to_string());
    }
    let verified = Command::new("systemd-analyze").arg("verify").args(&checked).output().unwrap();
    let said = text(&verified.stderr);
    assert!(verified.status.success(), "systemd-analyze verify: {said}");
    assert!(!said.contains("anxin.service:") && !said.contains("anxin-backup"), "nothing said of the units: {said}");
    let backup = std::fs::read_to_string(repository().join("deploy/anxin-backup.service")).unwrap();
    assert!(backup.contains("backup --into") && backup.contains("--keep"), "the timer's backups are pruned");
    let _ = std::fs::remove_dir_all(out);
}

/// The example settings hold every setting, commented out, and read back
/// as a settings file once uncommented.
#[test]
fn the_example_settings_name_every_setting_and_read_back() {
    let example = std::fs::read_to_string(repository().join("deploy/anxin.toml")).unwrap();
    let uncommented: String = example
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || rest.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')) => {
                rest
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let layer: anxin::settings::Layer = toml::from_str(&uncommented).expect("the example reads as settings");
    assert!(layer.sms.is_some() && layer.chain.is_some() && layer.retention.is_some());
    let table: toml::Table = toml::from_str(&uncommented).unwrap();
    for key in anxin::settings::Layer::KEYS.iter().filter(|k| **k != "admin_password") {
        assert!(table.contains_key(*key), "{key} is in deploy/anxin.toml");
    }
}

/// Under systemd (`Type=notify`, `WatchdogSec`): `serve` says READY=1 once
/// it serves, feeds the watchdog while its database answers, and says
/// STOPPING=1 when told to stop.
#[test]
fn under_systemd_serve_says_it_is_ready_feeds_the_watchdog_and_says_it_stops() {
    let folder = private_folder("notify");
    let socket_path = folder.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // WATCHDOG_PID must be the service's own: the shell's, kept by exec.
    let mut serve = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_anxin")])
        .args([
            "--data-dir",
            folder.to_str().unwrap(),
            "serve",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .env("ANXIN_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut said = Vec::new();
    let mut buffer = [0u8; 512];
    while said.iter().filter(|s: &&String| s.contains("WATCHDOG=1")).count() < 2 {
        let n = socket.recv(&mut buffer).expect("a notification within 30 s");
        said.push(String::from_utf8_lossy(&buffer[..n]).to_string());
    }
    assert!(said[0].contains("READY=1"), "ready first: {said:?}");
    Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().unwrap();
    loop {
        let n = socket.recv(&mut buffer).expect("STOPPING=1 within 30 s");
        if String::from_utf8_lossy(&buffer[..n]).contains("STOPPING=1") {
            break;
        }
    }
    assert!(serve.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(folder);
}

/// The operator's dashboard and alerting rules (`deploy/grafana`,
/// `deploy/prometheus`): the rules pass `promtool check rules`, the
/// dashboard reads as Grafana JSON, and every `anxin_*` metric either names
/// is on `/metrics` of a running `serve` once homes have reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_check_and_every_metric_the_rules_and_dashboard_name_is_served() {
    let rules = repository().join("deploy/prometheus/anxin-rules.yml");
    let checked = Command::new("promtool")
        .args(["check", "rules", rules.to_str().unwrap()])
        .output()
        .expect("promtool (Debian's prometheus; scripts/test installs it)");
    assert!(checked.status.success(), "{}{}", text(&checked.stdout), text(&checked.stderr));
    let dashboard = std::fs::read_to_string(repository().join("deploy/grafana/anxin-dashboard.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let panels = parsed["panels"].as_array().unwrap();
    assert!(panels.len() >= 8 && panels.iter().all(|p| !p["targets"].as_array().unwrap().is_empty()));
    let mut named: Vec<String> = Vec::new();
    for text in [std::fs::read_to_string(&rules).unwrap(), dashboard] {
        for (i, _) in text.match_indices("anxin_") {
            let name: String =
                text[i..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit()).collect();
            if name.len() > "anxin_".len() && !name.ends_with('_') && !named.contains(&name) {
                named.push(name);
            }
        }
    }
    assert!(named.len() >= 12, "{named:?}");

    let folder = private_folder("metrics-named");
    let data = folder.to_str().unwrap();
    let serve = crate::serve::Process::start(&[
        "--data-dir",
        data,
        "serve",
        "--mqtt-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ]);
    let mqtt = serve.address_after("MQTT broker on ");
    let http = serve.address_after("console on http://");
    let options = anxin_simulator::SimulateOptions {
        broker_host: mqtt.ip().to_string(),
        broker_port: mqtt.port(),
        homes: 3,
        duration: Duration::from_secs(2),
        speed: 600.0,
        id_prefix: "metrics-named".into(),
        credentials: crate::provision_homes(data, "metrics-named", 3),
        ..anxin_simulator::SimulateOptions::default()
    };
    anxin_simulator::run(options).await.unwrap();
    let mut missing = named.clone();
    for _ in 0..150 {
        let served = crate::serve::http_get(http, "/metrics").await;
        missing.retain(|name| {
            !served.lines().any(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
        });
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(missing.is_empty(), "named by the rules or the dashboard but not on /metrics: {missing:?}");
    let _ = serve.terminate();
    let _ = std::fs::remove_dir_all(folder);
}

/// `--log-format json` (or `ANXIN_LOG_FORMAT=json`): every log line is one
/// JSON object, for a log collector.
#[test]
fn json_logs_are_one_object_a_line_and_text_logs_carry_no_colour_codes() {
    use std::io::BufRead;
    let folder = private_folder("json-logs");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_anxin"))
        .args([
            "--data-dir",
            folder.to_str().unwrap(),
            "serve",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env("ANXIN_LOG", "info")
        .env("ANXIN_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok).take(3) {
            let _ = sender.send(line);
        }
    });
    let mut seen = 0;
    while let Ok(line) = received.recv_timeout(Duration::from_secs(20)) {
        let object: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            object["level"].is_string() && object["timestamp"].is_string() && object["fields"].is_object(),
            "{line}"
        );
        seen += 1;
        if seen == 3 {
            break;
        }
    }
    assert!(seen >= 1, "serve logged at start");
    Command::new("kill").args(["-TERM", &serve.id().to_string()]).status().unwrap();
    let _ = serve.wait();
    // Text logs to what is not a terminal (journald, a file) carry no
    // colour codes: journalctl showed them as "[2m…[0m".
    let text_logs = Command::new(env!("CARGO_BIN_EXE_anxin"))
        .args(["--data-dir", folder.to_str().unwrap(), "simulate", "--broker", "mqtt://127.0.0.1:1", "--homes", "1"])
        .args(["--duration", "1s"])
        .env("ANXIN_LOG", "info")
        .output()
        .unwrap();
    let logged = text(&text_logs.stderr);
    assert!(logged.contains("INFO") && !logged.contains('\u{1b}'), "plain text: {logged:?}");
    let _ = std::fs::remove_dir_all(folder);
}

/// `anxin retention`: the daily job, run by hand — the policy from the
/// settings file, what went by kind; a policy that would drop the audit log
/// before 180 days is refused before anything is touched.
#[test]
fn retention_runs_by_hand_with_the_file_s_policy_and_refuses_a_short_audit_log() {
    let data = private_folder("retention-cli");
    let data_arg = data.to_str().unwrap();
    let settings = data.join("anxin.toml");
    std::fs::write(&settings, "retention_days = 30\n[retention]\nrecords_years = 0\nleft_elders_years = 2\n").unwrap();
    let ran = anxin_at(data_arg, &["--config", settings.to_str().unwrap(), "retention"]);
    let said = text(&ran.stdout);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    assert!(said.contains("raw messages 30 days") && said.contains("visits and alerts for ever"), "{said}");
    assert!(said.contains("left elders anonymised after 2 years"), "{said}");
    assert!(said.lines().any(|line| line.starts_with("raw_messages ") && line.contains(" 0 deleted")), "{said}");
    assert!(!said.lines().any(|line| line.starts_with("visits ")), "kept for ever: not run\n{said}");

    std::fs::write(&settings, "[retention]\naudit_days = 30\n").unwrap();
    let refused = anxin_at(data_arg, &["--config", settings.to_str().unwrap(), "retention"]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("at least 180 days"), "{}", text(&refused.stderr));
    let _ = std::fs::remove_dir_all(data);
}
