//! The harness the CLI's test files share: a private world per test, and `belfry` run in it.

#![allow(dead_code, missing_docs)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_belfry");

/// A private world for one test: its own home, config directory and working directory.
pub struct World {
    /// The temporary directory holding everything.
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
        World {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn with_config(text: &str) -> Self {
        let w = World::new();
        std::fs::write(w.dir.path().join("belfry.toml"), text).unwrap();
        w
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.dir.path())
            .env("BELFRY_HOME", self.home())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env_remove("BELFRY_CONFIG")
            .env_remove("BELFRY_URLS")
            .env_remove("BELFRY_STORE")
            .env_remove("APPRISE_URLS")
            .env_remove("APPRISE_CONFIG_PATH")
            .env_remove("APPRISE_CONFIG")
            // No detached drainers outliving a test, except where a test asks for one.
            .env("BELFRY_BACKGROUND", "0")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs belfry with `input` on its standard input.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn history(&self, job: &str) -> Vec<Value> {
        self.json(&["history", job, "--json", "-n", "1000", "--output"])
            .as_array()
            .unwrap()
            .clone()
    }
}

/// The exit code.
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("belfry exits, it is not killed")
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
