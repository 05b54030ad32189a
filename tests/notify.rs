//! The systemd notifications as a service manager receives them: a real
//! Unix datagram socket in `$NOTIFY_SOCKET`. One test function, alone in its
//! process, because it sets environment variables.

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use banlight::notify::{self, NotifyState};

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a notification within 10 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn notifications_reach_the_socket_and_the_watchdog_follows_liveness() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    // Nothing set: a no-op, not an error.
    std::env::remove_var("NOTIFY_SOCKET");
    notify::send(&[NotifyState::Ready]).unwrap();

    std::env::set_var("NOTIFY_SOCKET", &path);
    notify::send(&[
        NotifyState::Ready,
        NotifyState::Status("listening on 127.0.0.1:1"),
    ])
    .unwrap();
    assert_eq!(recv(&sock), "READY=1\nSTATUS=listening on 127.0.0.1:1\n");
    notify::stopping();
    assert_eq!(recv(&sock), "STOPPING=1\n");

    // WATCHDOG_USEC applies to this process only (WATCHDOG_PID), at a third.
    std::env::set_var("WATCHDOG_USEC", "900000");
    std::env::remove_var("WATCHDOG_PID");
    assert_eq!(
        notify::watchdog_interval(),
        Some(Duration::from_millis(300))
    );
    std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
    assert_eq!(
        notify::watchdog_interval(),
        Some(Duration::from_millis(300))
    );
    std::env::set_var("WATCHDOG_PID", (std::process::id() + 1).to_string());
    assert_eq!(
        notify::watchdog_interval(),
        None,
        "meant for another process"
    );
    std::env::set_var("WATCHDOG_USEC", "0");
    std::env::remove_var("WATCHDOG_PID");
    assert_eq!(notify::watchdog_interval(), None);
    std::env::remove_var("WATCHDOG_USEC");
    assert_eq!(notify::watchdog_interval(), None);

    // The watchdog pings while alive and stops while the daemon is stuck.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let alive = Arc::new(AtomicBool::new(true));
    let flag = alive.clone();
    // checks that found the daemon stuck: once one has, no check that found
    // it alive is still on its way to a ping
    let stuck_checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stuck_seen = stuck_checks.clone();
    let pinger = std::thread::spawn(move || {
        rt.block_on(async move {
            let watchdog = notify::watchdog(Duration::from_millis(20), move || {
                let ok = flag.load(Ordering::SeqCst);
                if !ok {
                    stuck_seen.fetch_add(1, Ordering::SeqCst);
                }
                async move {
                    if ok {
                        Ok(())
                    } else {
                        Err("stuck".to_string())
                    }
                }
            });
            // ends with the test process (or after a minute)
            let _ = tokio::time::timeout(Duration::from_secs(60), watchdog).await;
        })
    });
    assert_eq!(recv(&sock), "WATCHDOG=1\n");
    assert_eq!(recv(&sock), "WATCHDOG=1\n");
    alive.store(false, Ordering::SeqCst);
    // drain what was sent before the flag flipped, then expect silence
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stuck_checks.load(Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "no check ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    while sock.recv(&mut buf).is_ok() {}
    sock.set_nonblocking(false).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        sock.recv(&mut buf).is_err(),
        "no ping while the daemon is stuck"
    );
    alive.store(true, Ordering::SeqCst);
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(recv(&sock), "WATCHDOG=1\n", "pings resume");
    drop(pinger);

    // An abstract socket is refused with a message, never a panic.
    std::env::set_var("NOTIFY_SOCKET", "@banlight-test");
    let e = notify::send(&[NotifyState::Ready]).unwrap_err();
    assert!(e.to_string().contains("abstract socket"), "{e}");
    notify::stopping(); // only logs
                        // A path where nobody listens: an error, not a hang.
    std::env::set_var("NOTIFY_SOCKET", dir.path().join("nobody"));
    assert!(notify::send(&[NotifyState::Ready]).is_err());
}
