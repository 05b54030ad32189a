//! Process-level tests of the real binary: durability across kill -9 mid-load
//! (every event answered `"counted": true` is still counted, and nothing
//! else is), config reload on SIGHUP, and a clean exit on SIGTERM.

mod common;
use common::bin;
use common::curl;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn spawn(config: &std::path::Path) -> (Child, SocketAddr) {
    let (child, addr, _log) = spawn_with_log(config);
    (child, addr)
}

/// Also hands back the daemon's later log lines.
fn spawn_with_log(
    config: &std::path::Path,
) -> (Child, SocketAddr, std::sync::mpsc::Receiver<String>) {
    let mut child = bin::spawn_daemon(config);
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        assert!(
            Instant::now() < deadline,
            "banlight did not report its address"
        );
        let line = lines.next().expect("banlight exited early").unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // keep draining stderr so the daemon never blocks on a full pipe
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, addr, rx)
}

/// Waits for a log line containing `needle`.
fn wait_for_log(log: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line with {needle:?} within 10 s"),
        }
    }
}

/// One hook on a new connection. `Some(true)` = answered counted.
fn hook(addr: SocketAddr, path: &str) -> Option<bool> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    if !buf.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(buf.contains("\"counted\":true"))
}

fn total(addr: SocketAddr) -> u64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /api/status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let body = buf.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["total"].as_u64().unwrap()
}

#[test]
fn kill_9_mid_load_loses_no_answered_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("banlight.toml");
    std::fs::write(&config, bin::record_config(dir.path(), "frames.jsonl")).unwrap();
    let (mut child, addr) = spawn(&config);

    let answered = Arc::new(AtomicU64::new(0));
    let unanswered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (answered, unanswered, stop) = (answered.clone(), unanswered.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // distinct addresses, and some without one: all of them count
                    let path = if i % 3 == 0 {
                        "/red".to_string()
                    } else {
                        format!("/blue?jail=sshd&ip=198.18.{c}.{}", i % 250 + (i / 250) % 5)
                    };
                    let path = if i % 3 == 1 {
                        format!("{path}&x={i}")
                    } else {
                        path
                    };
                    match hook(addr, &path) {
                        Some(true) => {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(false) => {}
                        None => {
                            // sent, no answer: the daemon died (or was about to)
                            unanswered.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();
    // let the load build, then pull the plug (a generous deadline: under qemu
    // the daemon and its clients run emulated, every commit synced)
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.load(Ordering::SeqCst) < 2000 {
        assert!(Instant::now() < deadline, "load did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill -9"); // SIGKILL: no shutdown code runs
    child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let answered = answered.load(Ordering::SeqCst);
    let in_flight = unanswered.load(Ordering::SeqCst);

    let (mut child, addr) = spawn(&config);
    let persisted = total(addr);
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "answered counted: {answered}, in flight at kill: {in_flight}, persisted: {persisted}"
    );
    // Every answered event is durable. An event committed in the instant
    // between its commit and its answer reaching the client is persisted
    // without an answer: at most one per client whose request was cut off.
    assert!(
        persisted >= answered,
        "lost {} answered events",
        answered - persisted
    );
    assert!(
        persisted <= answered + in_flight,
        "{persisted} persisted but only {answered} answered and {in_flight} in flight"
    );
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn sighup_reloads_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("banlight.toml");
    let base = bin::record_config(dir.path(), "frames.jsonl");
    std::fs::write(
        &config,
        format!("{base}[[route]]\nname = \"red\"\ncolor = \"#ff0000\"\n"),
    )
    .unwrap();
    let (mut child, addr, log) = spawn_with_log(&config);
    assert!(get(addr, "/red").starts_with("HTTP/1.1 200"));
    assert!(get(addr, "/teal").starts_with("HTTP/1.1 404"));
    std::fs::write(
        &config,
        format!("{base}[[route]]\nname = \"red\"\ncolor = \"#ff0000\"\n[[route]]\nname = \"teal\"\ncolor = \"#008080\"\nlabel = \"tEAL\"\n"),
    )
    .unwrap();
    signal(&child, libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(addr, "/teal").starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < deadline, "SIGHUP did not add the route");
        std::thread::sleep(Duration::from_millis(20));
    }
    // a broken file on SIGHUP is rejected; the daemon keeps serving the old config
    // (one ending inside an array once made the reload panic)
    std::fs::write(
        &config,
        format!("{base}[[route]]\nname = \"red\"\ncolor = \"#ff0000\"\nlabel = [\n"),
    )
    .unwrap();
    signal(&child, libc::SIGHUP);
    let line = wait_for_log(&log, "reload rejected");
    assert!(
        line.contains("banlight.toml:"),
        "names the file and line: {line}"
    );
    assert!(get(addr, "/teal").starts_with("HTTP/1.1 200"));
    // and the SIGHUP handler still works after a rejected reload
    std::fs::write(
        &config,
        format!("{base}[[route]]\nname = \"red\"\ncolor = \"#ff0000\"\n"),
    )
    .unwrap();
    signal(&child, libc::SIGHUP);
    wait_for_log(&log, "config reloaded");
    assert!(get(addr, "/teal").starts_with("HTTP/1.1 404"));
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM exits 0: {status}");
    assert_eq!(
        total_after_restart(dir.path()),
        3,
        "red, teal, and teal again before the bad reload"
    );
}

/// Starts the daemon again on the same state and reads the total.
fn total_after_restart(dir: &std::path::Path) -> u64 {
    let config = dir.join("restart.toml");
    std::fs::write(&config, bin::record_config(dir, "frames2.jsonl")).unwrap();
    let (mut child, addr) = spawn(&config);
    let t = total(addr);
    signal(&child, libc::SIGTERM);
    child.wait().unwrap();
    t
}

/// Two daemons on one state_dir would overwrite each other's counts: the
/// second refuses at start, naming the directory and the first one's pid,
/// and the first keeps serving.
#[test]
fn a_second_daemon_on_the_same_state_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config_for = |name: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\ncontrol_socket = \"{}\"\n[panel]\nbackend = \"record\"\nrecord_path = \"{}\"\n",
                dir.path().join("state").display(),
                dir.path().join(format!("{name}.sock")).display(),
                dir.path().join(format!("{name}.jsonl")).display()
            ),
        )
        .unwrap();
        path
    };
    let (mut first, addr) = spawn(&config_for("first"));
    assert_eq!(hook(addr, "/red"), Some(true));
    let second = bin::command()
        .arg("--config")
        .arg(config_for("second"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the second banlight");
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second daemon must not run");
    assert!(
        stderr.contains(&dir.path().join("state").display().to_string())
            && stderr.contains(&format!("pid {}", first.id())),
        "names the directory and the running instance: {stderr}"
    );
    assert_eq!(hook(addr, "/red"), Some(true), "the first keeps serving");
    assert_eq!(total(addr), 2);
    signal(&first, libc::SIGTERM);
    first.wait().unwrap();
}

/// One hook by the real curl, as the fail2ban action sends it (bearer token,
/// `--max-time 3`): the HTTP status curl saw, "000" when it gave up.
fn curl_status(addr: SocketAddr, token: &str, path: &str) -> String {
    let auth = format!("Authorization: Bearer {token}");
    curl::status(&["-H", &auth], &format!("http://{addr}{path}"))
}

/// A store locked by someone else (a backup tool, a stuck sqlite3 shell)
/// answers 503 before curl's `--max-time 3` gives up, since the lock wait
/// is 2 s; a stuck store's failures are not each logged twice; the hook
/// counts once the lock is gone; a wrong token is logged as that, not as
/// "token required".
#[test]
fn a_locked_store_answers_503_in_time_and_is_logged_with_a_limit() {
    if !curl::present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("banlight.toml");
    let token = "web1-token-0123456789";
    std::fs::write(
        &config,
        format!(
            "{}[[source]]\nname = \"web-1\"\ntoken = \"{token}\"\n",
            bin::record_config(dir.path(), "frames.jsonl")
        ),
    )
    .unwrap();
    let (mut child, addr, log) = spawn_with_log(&config);
    assert_eq!(curl_status(addr, token, "/red?ip=203.0.113.1"), "200");
    let side = rusqlite::Connection::open(dir.path().join("state").join("banlight.db")).unwrap();
    side.execute_batch("BEGIN IMMEDIATE").unwrap();
    const FAILED: usize = 4;
    for i in 0..FAILED {
        assert_eq!(
            curl_status(addr, token, &format!("/red?ip=203.0.113.{}", 10 + i)),
            "503",
            "hook {i} against a locked store: 503 within curl's 3 s"
        );
    }
    side.execute_batch("ROLLBACK").unwrap();
    assert_eq!(curl_status(addr, token, "/red?ip=203.0.113.10"), "200");
    assert_eq!(total(addr), 2, "the first hook and the retried one");
    assert_eq!(
        curl_status(addr, "wrong-token-0123456789", "/red?ip=203.0.113.99"),
        "401"
    );
    // Everything logged up to the refusal of the wrong token.
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = log
            .recv_timeout(left)
            .expect("the wrong token is logged within 10 s");
        if line.contains("refused") {
            break line;
        }
        lines.push(line);
    };
    assert!(
        refused.contains("wrong token") && !refused.contains("required"),
        "{refused}"
    );
    let store_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("not stored") || l.contains("could not store"))
        .collect();
    assert!(
        !store_lines.is_empty() && store_lines.len() < FAILED,
        "{FAILED} failed hooks: the first is logged, the rest are held back for the next summary: {store_lines:#?}"
    );
    signal(&child, libc::SIGTERM);
    child.wait().unwrap();
}
