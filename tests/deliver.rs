//! The server-side delivery script (fail2ban/banlight-deliver, what the
//! fail2ban action and the sshguard hook run) against the real daemon:
//! - bans left in the spool by a delivery process that is gone (fail2ban
//!   restarted, the server rebooted) go out on `kick`, which the action's
//!   `actionstart` runs, with each ban's own time;
//! - the spool stays bounded (oldest dropped first), root-only, and a full
//!   spool says so through `logger` (a stand-in on PATH records it).
//!
//! The end-to-end test with the real fail2ban (tests/fail2ban_e2e.py) covers
//! outages, hung appliances and bursts; this one the edges it does not reach.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{test_config, TestDaemon};

fn deliver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fail2ban/banlight-deliver")
}

fn tools_present() -> bool {
    let present = ["curl", "flock", "sh"].iter().all(|tool| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !present {
        assert!(
            std::env::var("CI").is_err(),
            "curl and flock are required under CI"
        );
        eprintln!("SKIPPED: curl or flock is not installed");
    }
    present
}

/// A server's side: its spool, and a `logger` stand-in that appends what
/// banlight-deliver sends to syslog to a file.
struct Server {
    dir: tempfile::TempDir,
}

impl Server {
    fn new() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let logger = bin.join("logger");
        std::fs::write(
            &logger,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >>'{}'\n",
                dir.path().join("syslog").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&logger, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The spool is root's alone (issue 19, item 4): 0700, or it is refused.
        std::fs::create_dir(dir.path().join("spool")).unwrap();
        std::fs::set_permissions(
            dir.path().join("spool"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        Server { dir }
    }

    fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    fn run(&self, args: &[String]) -> Output {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("sh")
            .arg(deliver())
            .args(args)
            .env("PATH", path)
            .output()
            .expect("run banlight-deliver")
    }

    fn spooled(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.spool())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("e."))
            .collect();
        v.sort();
        v
    }

    fn syslog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("syslog")).unwrap_or_default()
    }
}

/// Holds the spool's delivery lock, as a running delivery process would:
/// `enqueue` then spools without starting one. Dropping it lets go.
struct DeliveryLock(#[allow(dead_code)] std::fs::File);

impl DeliveryLock {
    fn take(spool: &Path) -> DeliveryLock {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(spool.join(".lock"))
            .unwrap();
        // SAFETY: flock(2) on a descriptor this struct owns.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(r, 0, "lock the spool");
        DeliveryLock(f)
    }
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_left_behind_is_delivered_on_kick_bounded_and_oldest_dropped_first() {
    if !tools_present() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(state.path(), "")).await;
    let server = Server::new();
    let spool = server.spool();
    let now_s = banlight::clock::wall_ms() / 1000;
    let ban_time = |i: u64| now_s - 3600 + i * 60;

    // The delivery process of before the restart is "running" (the lock is
    // held), so each enqueue only spools; 12 bans into a spool of 10.
    let lock = DeliveryLock::take(&spool);
    for i in 1..=12u64 {
        let out = server.run(&[
            s("enqueue"),
            s("--url"),
            format!("http://{}/red", d.addr),
            s("--ip"),
            format!("198.51.100.{i}"),
            s("--jail"),
            s("sshd"),
            s("--time"),
            format!("{}.5", ban_time(i)),
            s("--spool"),
            spool.display().to_string(),
            s("--spool-max"),
            s(10),
        ]);
        assert!(
            out.status.success(),
            "enqueue {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let files = server.spooled();
    // The 11th ban trimmed the spool to 90 % (9), the 12th made it 10.
    assert_eq!(files.len(), 10, "{files:?}");
    let kept: Vec<String> = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .nth(2)
                .unwrap()
                .to_string()
        })
        .collect();
    let expected: Vec<String> = (3..=12).map(|i| format!("198.51.100.{i}")).collect();
    assert_eq!(kept, expected, "the two oldest bans were dropped");
    assert!(
        server
            .syslog()
            .contains("full (10 bans): dropped the 2 oldest"),
        "a full spool is logged: {:?}",
        server.syslog()
    );
    assert_eq!(
        std::fs::metadata(&spool).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for f in &files {
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600,
            "{f:?} is root-only"
        );
    }

    // That process is gone (fail2ban restarted): nothing delivers until the
    // action starts again and its actionstart kicks the spool.
    drop(lock);
    assert_eq!(d.status().await["total"], 0);
    let kicked = Instant::now();
    let out = server.run(&[
        s("kick"),
        s("--spool"),
        spool.display().to_string(),
        s("--retry-min"),
        s(1),
        s("--retry-max"),
        s(2),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        kicked.elapsed() < Duration::from_secs(10),
        "kick returns at once; delivery goes on in the background"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.status().await["total"] != 10 || !server.spooled().is_empty() {
        assert!(
            Instant::now() < deadline,
            "spool not delivered within 60 s: {} left, status {}",
            server.spooled().len(),
            d.status().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recent = d.get("/api/recent").await.json();
    let events = recent["events"].as_array().unwrap();
    assert_eq!(events.len(), 10);
    for e in events {
        let ip = e["ip"].as_str().unwrap();
        let i: u64 = ip.rsplit('.').next().unwrap().parse().unwrap();
        assert!((3..=12).contains(&i), "{ip} was dropped from the spool");
        assert_eq!(
            e["ts_ms"].as_u64().unwrap(),
            ban_time(i) * 1000,
            "{ip}: the history shows when the ban happened"
        );
        assert_eq!(e["jail"], "sshd");
    }

    // Kicking an empty or missing spool starts nothing and says nothing.
    for dir in [spool.clone(), server.dir.path().join("no-such-spool")] {
        let out = server.run(&[s("kick"), s("--spool"), dir.display().to_string()]);
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    }
    assert!(!server.dir.path().join("no-such-spool").exists());
    d.shutdown().await;
}
