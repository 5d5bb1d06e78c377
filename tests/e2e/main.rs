//! End-to-end tests of the whole `anxin` binary, driven from outside as a
//! user or an operator would: real processes, a real broker.

mod alerts;
mod people;
mod serve;
mod simulate;

use std::process::{Command, Output};

/// Runs the built `anxin` binary with `args` and waits for it.
pub fn anxin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anxin")).args(args).env("ANXIN_LOG", "error").output().expect("run anxin")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
