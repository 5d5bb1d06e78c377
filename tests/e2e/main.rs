//! End-to-end tests of the whole `anxin` binary, driven from outside as a
//! user or an operator would: real processes, a real broker.

mod alerts;
mod bench;
mod browser;
mod ledger;
mod people;
mod serve;
mod simulate;

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

/// `elders add` for the elder most tests register.
pub const ADD_WANG_XIUYING: [&str; 12] = [
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
];

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
