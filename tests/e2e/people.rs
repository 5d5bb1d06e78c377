//! `anxin users` and visitor assignment from the command line.

use anxin_testkit::private_folder;

use crate::{ADD_WANG_XIUYING, anxin_at, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_added_with_a_one_time_password_and_visitors_assigned() {
    let folder = private_folder("e2e-people");
    let data = folder.to_str().unwrap();
    let run = |args: &[&str]| anxin_at(data, args);
    let added = run(&["users", "add", "志愿者 赵", "--role", "visitor"]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let out = text(&added.stdout);
    let password = out.split("one-time password: ").nth(1).unwrap().lines().next().unwrap();
    assert_eq!(password.len(), 20, "{out}");

    let no_region = run(&["users", "add", "值班员 李", "--role", "oncall"]);
    assert_eq!(no_region.status.code(), Some(2));
    assert!(text(&no_region.stderr).contains("the oncall role needs at least one --region"));
    let bad_role = run(&["users", "add", "x", "--role", "root"]);
    assert!(text(&bad_role.stderr).contains("--role \"root\" is not one of"));
    assert!(run(&["users", "add", "值班员 李", "--role", "oncall", "--region", "振兴区/站前街道"]).status.success());
    let listed = text(&run(&["users", "list"]).stdout);
    assert!(listed.contains("值班员 李") && listed.contains("振兴区/站前街道"), "{listed}");
    // A visitor's kind, by its code or the plan's word; only for visitors.
    assert!(run(&["users", "add", "网格员 孙", "--role", "visitor", "--kind", "网格员"]).status.success());
    let kind = run(&["users", "set-kind", "志愿者 赵", "volunteer"]);
    assert!(text(&kind.stdout).contains("volunteer (志愿者)"), "{}", text(&kind.stderr));
    let bad_kind = run(&["users", "set-kind", "志愿者 赵", "astronaut"]);
    assert!(text(&bad_kind.stderr).contains("is not a visitor kind"), "{}", text(&bad_kind.stderr));
    let not_a_visitor = run(&["users", "set-kind", "值班员 李", "volunteer"]);
    assert!(text(&not_a_visitor.stderr).contains("there is no visitor named"), "{}", text(&not_a_visitor.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&run(&["users", "list", "--json"]).stdout).unwrap();
    let kinds: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|u| u["visitor_kind"].as_str()).collect();
    assert_eq!(kinds, vec!["volunteer", "grid_worker"], "by name: {listed}");

    let elder = run(&ADD_WANG_XIUYING);
    assert!(elder.status.success());
    assert!(text(&run(&["elders", "unassigned"]).stdout).contains("王秀英"));
    let assigned = run(&["elders", "assign", "1", "--visitor", "志愿者 赵"]);
    assert!(assigned.status.success(), "{}", text(&assigned.stderr));
    assert!(text(&run(&["elders", "unassigned"]).stdout).contains("every elder has a visitor"));
    let wrong = run(&["elders", "assign", "1", "--visitor", "值班员 李"]);
    assert!(text(&wrong.stderr).contains("值班员 李 is not a visitor"));
    let refused = run(&["tokens", "issue", "值班员 李"]);
    assert!(
        text(&refused.stderr).contains("值班员 李 has not set their own password yet"),
        "a token would stand for the one-time password: {}",
        text(&refused.stderr)
    );
    crate::user_with_own_password(data, &["调度 周", "--role", "oncall", "--region", "振兴区"]).await;
    let token = run(&["tokens", "issue", "调度 周", "--days", "30"]);
    assert!(token.status.success(), "{}", text(&token.stderr));
    let token = text(&token.stdout).trim().to_string();
    assert!(token.starts_with("anx_") && token.len() == 68, "{token}");
    assert!(text(&run(&["tokens", "issue", "nobody"]).stderr).contains("there is no user called nobody"));
    let listed = text(&run(&["tokens", "list"]).stdout);
    let line = listed.lines().find(|line| line.contains("调度 周")).unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains("never used") && line.contains("expires"), "{line}");
    assert!(!listed.contains(&token[4..]), "the token itself is never shown again");
    let id = line.split_whitespace().next().unwrap();
    assert_eq!(text(&run(&["tokens", "revoke", id]).stdout).trim(), format!("revoked token {id}"));
    assert!(text(&run(&["tokens", "list", "--user", "调度 周"]).stdout).contains("revoked"));
    assert!(text(&run(&["tokens", "revoke", id]).stderr).contains("there is no live token"));
    assert!(text(&run(&["users", "disable", "调度 周"]).stdout).contains("disabled 调度 周"));
    assert!(text(&run(&["tokens", "issue", "调度 周"]).stderr).contains("调度 周 is disabled"));
    assert!(run(&["users", "enable", "调度 周"]).status.success());
    let reset = text(&run(&["users", "reset-password", "调度 周"]).stdout);
    assert!(reset.contains("调度 周's one-time password: "), "{reset}");
    assert!(text(&run(&["tokens", "issue", "调度 周"]).stderr).contains("has not set their own password"));
    let verified = run(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(text(&verified.stdout).starts_with("the audit log holds: "), "{}", text(&verified.stdout));
    let too_soon = run(&["audit", "prune", "--older-than-days", "30"]);
    assert_eq!(too_soon.status.code(), Some(2), "180 days at least");
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_creates_an_admin_whose_one_time_password_is_printed_once() {
    use anxin_store::{Database, Store};
    use anxin_testkit::free_port;

    use crate::serve::Process;

    let folder = private_folder("e2e-first-admin");
    let data = folder.to_str().unwrap();
    let start = || {
        let mqtt = format!("127.0.0.1:{}", free_port());
        let http = format!("127.0.0.1:{}", free_port());
        Process::start(&["--data-dir", data, "serve", "--mqtt-listen", &mqtt, "--http-listen", &http])
    };
    let (lines, status) = start().terminate();
    assert!(status.success());
    let line = lines.iter().find(|l| l.contains("one-time password")).unwrap_or_else(|| panic!("{lines:?}"));
    let password = line.split("one-time password ").nth(1).unwrap().split_whitespace().next().unwrap();
    let (again, _) = start().terminate();
    assert!(again.iter().all(|l| !l.contains("password")), "printed once only: {again:?}");

    let store = Store::open(&Database::in_data_dir(&folder)).await.unwrap();
    let admin = store.authenticate("admin", password).await.unwrap().expect("the printed password signs in");
    let users = store.users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert!(users[0].must_change_password, "it must be changed at the first sign-in");
    assert_eq!(admin.role.as_str(), "admin");
    store.close().await;

    let other = private_folder("e2e-first-admin-env");
    let short = std::process::Command::new(env!("CARGO_BIN_EXE_anxin"))
        .args([
            "--data-dir",
            other.to_str().unwrap(),
            "serve",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env("ANXIN_ADMIN_PASSWORD", "too short")
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(
        text(&short.stderr).contains("ANXIN_ADMIN_PASSWORD needs at least 12 characters"),
        "{}",
        text(&short.stderr)
    );
}

/// `anxin elders list | head -1`: when the reader goes away, the command ends
/// quietly and successfully, as Unix tools do, instead of panicking.
#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    let folder = private_folder("e2e-pipe");
    let data = folder.to_str().unwrap();
    assert!(anxin_at(data, &ADD_WANG_XIUYING).status.success());
    let (reader, writer) = std::io::pipe().unwrap();
    // The reader is gone before anything is written: every write fails with EPIPE.
    drop(reader);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_anxin"))
        .args(["--data-dir", data, "elders", "list"])
        .env("ANXIN_LOG", "error")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
}

/// `anxin users import`: a county's staff from one CSV file. A file with a
/// wrong row adds nobody and says each problem with its line; a good one
/// adds everyone, the one-time passwords only in the owner-only file, each
/// signing its user in once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_come_from_a_csv_file_all_or_none_with_their_passwords_in_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let folder = private_folder("e2e-people-import");
    let data = folder.to_str().unwrap();
    assert!(anxin_at(data, &["users", "add", "管理员 周", "--role", "admin"]).status.success());
    let csv = folder.join("staff.csv");
    let passwords = folder.join("passwords.csv");
    let import = || anxin_at(data, &["users", "import", csv.to_str().unwrap(), "--out", passwords.to_str().unwrap()]);

    std::fs::write(
        &csv,
        "name,role,regions,kind\n\
         值班员 王,oncall,振兴区\n\
         民政局 张,official,\n\
         探访员 刘,visitor,振兴区/站前街道;振兴区/永昌街道,网格员\n\
         管理员 周,admin,,\n\
         值班员 王,oncall,元宝区\n\
         x,root,,\n",
    )
    .unwrap();
    let refused = import();
    assert!(!refused.status.success());
    let said = text(&refused.stderr);
    for expected in [
        "nobody added; 4 of the rows are wrong",
        "line 3: the official role needs at least one --region",
        "line 5: there is already a user called 管理员 周",
        "line 6: 值班员 王 is in the file twice",
        "line 7: role \"root\" is not one of",
    ] {
        assert!(said.contains(expected), "{expected:?} in:\n{said}");
    }
    assert!(!passwords.exists(), "no passwords' file for a refused import");
    assert!(!text(&anxin_at(data, &["users", "list"]).stdout).contains("值班员 王"), "nobody added");

    std::fs::write(
        &csv,
        "\u{feff}name,role,regions,kind\n值班员 王,oncall,振兴区\n民政局 张,official,振兴区\n\
         探访员 刘,visitor,振兴区/站前街道;振兴区/永昌街道,网格员\n",
    )
    .unwrap();
    let imported = import();
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let said = text(&imported.stdout);
    assert!(said.contains("3 users added"), "{said}");
    let kept = std::fs::read_to_string(&passwords).unwrap();
    assert_eq!(std::fs::metadata(&passwords).unwrap().permissions().mode() & 0o777, 0o600);
    let listed = text(&anxin_at(data, &["users", "list"]).stdout);
    assert!(listed.contains("振兴区/永昌街道"), "{listed}");
    let store = anxin_store::Store::open(&anxin_store::Database::in_data_dir(&folder)).await.unwrap();
    for line in kept.lines().skip(1) {
        let (name, password) = line.split_once(',').unwrap();
        assert!(!said.contains(password), "a password on the terminal");
        let principal = store.authenticate(name, password).await.unwrap();
        assert!(principal.is_some(), "{name} signs in with the one-time password");
    }
    assert_eq!(kept.lines().count(), 4, "{kept}");
    store.close().await;
    let again = import();
    assert!(text(&again.stderr).contains("it must not exist") || text(&again.stderr).contains("already a user"));

    // Run as the service's user, the command may not read the file nor
    // write beside it: `-` takes the CSV on standard input and gives the
    // passwords on standard output, the shell's redirections doing the rest.
    let piped = {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_anxin"))
            .args(["--data-dir", data, "users", "import", "-", "--out", "-"])
            .env("ANXIN_LOG", "error")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all("name,role,regions,kind\n志愿者 赵,visitor,振兴区,志愿者\n".as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    let given = text(&piped.stdout);
    let line = given.lines().nth(1).unwrap_or_default();
    assert!(given.starts_with("name,one_time_password\n") && line.starts_with("志愿者 赵,"), "{given}");
    assert!(text(&piped.stderr).contains("1 users added"), "{}", text(&piped.stderr));
    let store = anxin_store::Store::open(&anxin_store::Database::in_data_dir(&folder)).await.unwrap();
    assert!(store.authenticate("志愿者 赵", line.split_once(',').unwrap().1).await.unwrap().is_some());
    store.close().await;
    let _ = std::fs::remove_dir_all(folder);
}
