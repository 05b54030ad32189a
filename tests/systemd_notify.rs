//! The real binary under a stand-in for systemd: NOTIFY_SOCKET and
//! WATCHDOG_USEC set, READY=1 only once it answers HTTP, watchdog pings at
//! a third of the interval, STOPPING=1 on SIGTERM, then a clean exit.

mod common;
use common::bin;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 1024];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    // sd-notify ends every line with a newline
    String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
}

#[test]
fn ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let config = dir.path().join("banlight.toml");
    // With systemctl as the shutdown command the daemon asks logind at
    // start (busctl), whose own failure must not reach this socket.
    let text = format!(
        "shutdown_command = \"systemctl poweroff\"\n{}",
        bin::record_config(dir.path(), "frames.jsonl")
    );
    std::fs::write(&config, text).unwrap();
    // Measured from before the spawn: it precedes READY, and a receiver that
    // wakes late can only make the elapsed times longer, never shorter.
    let t_spawn = Instant::now();
    let mut child = bin::command()
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "900000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let ready = recv(&sock);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    let addr = ready
        .split("STATUS=listening on ")
        .nth(1)
        .expect("a STATUS with the address")
        .trim()
        .to_string();
    // Ready means ready: the listener answers at once.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /api/status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");

    // Pings every 300 ms after READY (a third of 900 ms), each after a round
    // trip through the engine and the store: the second is 600 ms after READY.
    assert_eq!(recv(&sock), "WATCHDOG=1");
    assert!(
        t_spawn.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t_spawn.elapsed()
    );
    assert_eq!(recv(&sock), "WATCHDOG=1");
    assert!(
        t_spawn.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t_spawn.elapsed()
    );

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopping = loop {
        let m = recv(&sock);
        if m != "WATCHDOG=1" {
            break m;
        }
    };
    assert_eq!(stopping, "STOPPING=1");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn the_binary_for_this_target_runs() {
    let out = bin::command().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}
