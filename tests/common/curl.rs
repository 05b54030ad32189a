//! The real curl, as the fail2ban action runs it (`--max-time 3`).
#![allow(dead_code)]

use std::process::{Command, Stdio};

/// Is curl installed? Under CI=true it must be; elsewhere a test may skip.
pub fn present() -> bool {
    let present = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !present {
        assert!(std::env::var("CI").is_err(), "curl is required under CI");
        eprintln!("SKIPPED: curl is not installed");
    }
    present
}

/// One request with `--max-time 3` and `extra` options: the HTTP status
/// curl saw, "000" when it got none (gave up, refused, reset).
pub fn status(extra: &[&str], url: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "3",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
