//! The README's "Trying it" block, run as a newcomer would: each line as
//! written, through `sh`, one after the other; a line whose comment says
//! "terminal N" stays running beside the rest. Only what a newcomer's
//! machine would differ in is substituted: `cargo run --release --` is the
//! built binary, and the data folder and ports come from the `ANXIN_*`
//! variables every flag has (plus the console's address in the `curl` line).
//! Each step's promise — its comment, or what the README says after the
//! block — is checked on what it printed.

use std::process::Command;
use std::time::Duration;

use anxin_testkit::{free_port, private_folder};

use crate::serve::Process;

/// The lines of the first `sh` block after `## Trying it`, with `\`
/// continuations joined.
fn trying_it() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Trying it").expect("the README has a \"Trying it\" section")..];
    let block = &section[section.find("```sh\n").expect("an sh block") + 6..];
    let block = &block[..block.find("```").unwrap()];
    let mut lines = Vec::new();
    let mut joined = String::new();
    for line in block.lines() {
        match line.strip_suffix('\\') {
            Some(start) => joined.push_str(start),
            None => {
                joined.push_str(line);
                lines.push(std::mem::take(&mut joined));
            }
        }
    }
    lines
}

#[test]
fn the_readme_walkthrough_does_what_it_says() {
    let folder = private_folder("walkthrough");
    let data = folder.join("data");
    let mqtt = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let shell = |line: &str, background: bool| {
        let script = line.replace("cargo run --release --", "\"$ANXIN\"").replace("127.0.0.1:8080", &http);
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(if background { format!("exec {script}") } else { script })
            .current_dir(&folder)
            .env("ANXIN", env!("CARGO_BIN_EXE_anxin"))
            .env("ANXIN_DATA_DIR", &data)
            .env("ANXIN_LOG", "error");
        let subcommand = line.split_whitespace().nth(4).unwrap_or_default();
        match subcommand {
            "serve" => command.env("ANXIN_MQTT_LISTEN", &mqtt).env("ANXIN_HTTP_LISTEN", &http),
            "simulate" => command.env("ANXIN_BROKER", format!("mqtt://{mqtt}")),
            _ => &mut command,
        };
        command
    };

    let mut running: Vec<(String, Process)> = Vec::new();
    let mut printed: Vec<(String, String)> = Vec::new();
    let mut tail_before_second_run = None;
    for line in trying_it() {
        let command_part = line.split(" #").next().unwrap_or_default().trim().to_string();
        if line.contains("# terminal") {
            let step = Process::spawn(shell(&line, true));
            if command_part.ends_with(" serve") {
                let ready = step.next_line();
                assert!(ready.contains(&format!("MQTT broker on {mqtt}")), "the ready line: {ready}");
                assert!(ready.contains(&format!("console on http://{http}")), "the ready line: {ready}");
            }
            running.push((command_part, step));
            continue;
        }
        if command_part.contains("simulate") && !printed.iter().any(|(step, _)| step.contains("simulate")) {
            // The first run's messages arrive before any pairing.
        } else if command_part.contains("simulate") {
            let tail = running.iter().find(|(step, _)| step.contains("events tail")).expect("events tail runs");
            tail_before_second_run = Some(tail.1.printed_so_far());
        }
        let output = shell(&line, false).output().unwrap();
        let out = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "`{command_part}` failed:\n{out}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        printed.push((command_part, out));
    }

    let said = |step: &str| -> &str {
        let matching: Vec<&(String, String)> = printed.iter().filter(|(command, _)| command.contains(step)).collect();
        assert!(!matching.is_empty(), "the walkthrough no longer runs `{step}`");
        &matching.last().unwrap().1
    };
    let first_run = &printed.iter().find(|(command, _)| command.contains("simulate")).unwrap().1;
    assert!(
        first_run.contains("provisioned 20 devices for this run, sim-00001 … sim-00020"),
        "the first simulate provisions its nodes:\n{first_run}"
    );
    let unclaimed = said("devices list --unclaimed");
    assert_eq!(unclaimed.lines().filter(|line| line.contains("sim-000")).count(), 20, "{unclaimed}");
    assert!(said("elders add").contains("added elder 1: 王秀英"));
    assert!(said("devices pair sim-00003").contains("paired sim-00003 with elder 1"));
    let open = said("alerts list --open");
    let smoke = open.lines().find(|line| line.contains("smoke")).unwrap_or_else(|| panic!("a smoke alarm:\n{open}"));
    assert!(smoke.contains("critical") && smoke.contains("open"), "{smoke}");
    let history = said("alerts show 1");
    for entry in ["opened", "acknowledged", "resolved", "值班员李", "false_alarm"] {
        assert!(history.contains(entry), "{entry} in the alert's history:\n{history}");
    }
    let metrics = said("/metrics");
    assert!(metrics.lines().count() > 10 && metrics.lines().all(|line| line.starts_with("anxin_")), "{metrics}");
    assert!(folder.join("township.xlsx").is_file(), "ledger sample wrote township.xlsx");
    assert!(said("ledger import").contains("300"), "{}", said("ledger import"));
    let rate = said("visits rate");
    assert!(rate.lines().count() > 1 && rate.contains('%'), "the month's rate by township:\n{rate}");

    // The tail showed sim-00003's messages as they came, the smoke alarm among them.
    let (_, tail) = running.iter().find(|(step, _)| step.contains("events tail")).unwrap();
    let before = tail_before_second_run.expect("a second simulate run").len();
    let mut after = tail.printed_so_far();
    after.retain(|line| line.contains("sim-00003"));
    assert!(after.iter().any(|line| line.contains("smoke")), "{before} lines before the second run, then: {after:?}");

    drop(running);
    let _ = std::fs::remove_dir_all(folder);
}

/// `anxin demo`: one command, and within two minutes a smoke alarm, an
/// inactive elder and a dead sensor are open; the printed sign-ins work.
#[test]
fn the_demo_shows_a_smoke_alarm_an_inactive_elder_and_a_dead_sensor() {
    let demo = Process::start(&["demo", "--http-listen", "127.0.0.1:0"]);
    let console = demo.address_after("the console is on http://");
    let mut printed = vec![demo.ready.clone()];
    while !printed.last().unwrap().contains("Ctrl-C stops it") {
        printed.push(demo.next_line());
    }
    let all = printed.join("\n");
    let folder =
        all.split(" on ").find_map(|part| part.split_whitespace().next().filter(|p| p.contains("anxin-demo-")));
    let folder = folder.unwrap_or_else(|| panic!("the demo says where its data is:\n{all}")).to_string();
    let password = |name: &str| -> String {
        let line = printed.iter().find(|line| line.trim_start().starts_with(&format!("{name} "))).unwrap();
        line.split_whitespace().last().unwrap().to_string()
    };
    for role in ["admin", "oncall", "visitor", "official"] {
        assert_eq!(password(role).len(), 20, "{role}'s one-time password in:\n{all}");
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let kinds = ["smoke", "inactivity", "device_offline"];
    let open = loop {
        let open = crate::text(&crate::anxin_at(&folder, &["alerts", "list", "--open"]).stdout);
        if kinds.iter().all(|kind| open.contains(&format!(" {kind} "))) || std::time::Instant::now() > deadline {
            break open;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    for (kind, home) in [("smoke", "elder 1 "), ("inactivity", "elder 2 "), ("device_offline", "elder 3 ")] {
        assert!(
            open.lines().any(|line| line.contains(&format!(" {kind} ")) && line.contains(home)),
            "{kind} at {home}on the board within two minutes:\n{open}"
        );
    }

    // The printed password signs oncall in, and the console asks for a new one, as always.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (signed_in, first_page) = runtime.block_on(async {
        let login = crate::http(console, "GET /login", "", "").await;
        let cookie = crate::set_cookie(&login);
        let csrf = cookie.split_once('=').unwrap().1.to_string();
        let body = format!("name=oncall&password={}&csrf={csrf}&next=%2F", password("oncall"));
        let signed_in = crate::http(
            console,
            "POST /login",
            &format!("Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"),
            &body,
        )
        .await;
        let session = crate::set_cookie(&signed_in);
        let first_page = crate::http(console, "GET /", &format!("Cookie: {session}\r\n"), "").await;
        (signed_in, first_page)
    });
    assert!(signed_in.starts_with("HTTP/1.1 303"), "oncall signs in with the printed password:\n{signed_in}");
    assert!(first_page.starts_with("HTTP/1.1 303"), "{first_page}");
    assert!(
        first_page.contains("\r\nlocation: /password\r\n"),
        "and is asked for a password of their own:\n{first_page}"
    );

    let (_, status) = demo.terminate();
    assert!(status.success());
    assert!(!std::path::Path::new(&folder).exists(), "the demo deletes its folder");
}
