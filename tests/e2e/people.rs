//! `anxin users` and visitor assignment from the command line.

use anxin_testkit::private_folder;

use crate::{ADD_WANG_XIUYING, anxin_at, text};

#[test]
fn users_are_added_with_a_one_time_password_and_visitors_assigned() {
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

    let elder = run(&ADD_WANG_XIUYING);
    assert!(elder.status.success());
    assert!(text(&run(&["elders", "unassigned"]).stdout).contains("王秀英"));
    let assigned = run(&["elders", "assign", "1", "--visitor", "志愿者 赵"]);
    assert!(assigned.status.success(), "{}", text(&assigned.stderr));
    assert!(text(&run(&["elders", "unassigned"]).stdout).contains("every elder has a visitor"));
    let wrong = run(&["elders", "assign", "1", "--visitor", "值班员 李"]);
    assert!(text(&wrong.stderr).contains("值班员 李 is not a visitor"));
    let token = run(&["tokens", "issue", "值班员 李"]);
    assert!(token.status.success(), "{}", text(&token.stderr));
    assert!(text(&token.stdout).trim().starts_with("anx_") && text(&token.stdout).trim().len() == 68);
    assert!(text(&run(&["tokens", "issue", "nobody"]).stderr).contains("there is no user called nobody"));
    let _ = std::fs::remove_dir_all(folder);
}
