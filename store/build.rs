//! The migrations are embedded by `sqlx::migrate!`, which cannot tell cargo
//! to watch their folder on stable Rust: this does, so a new or changed
//! migration rebuilds the store (and the binary) without touching a source.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
