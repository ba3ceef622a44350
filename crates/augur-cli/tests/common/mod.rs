//! Helpers shared by the CLI's end-to-end tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Command, Output};

/// Runs the built `augur` binary with `args`.
pub fn augur(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(args)
        .output()
        .expect("the augur binary runs")
}

/// The SmolLM2-135M file (a missing model fails with the command that fetches it).
pub fn smol() -> String {
    augur::models::path_of("smollm2-135m")
        .unwrap_or_else(|e| panic!("{e}"))
        .display()
        .to_string()
}

/// A run's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
