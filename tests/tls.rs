//! The TLS listener with the real curl, verifying as the snippet makes a
//! server verify (no --insecure: the appliance's certificate as the only
//! trusted one, its name in the URL, --connect-to the real address, the key
//! pinned): the right pin works, a wrong pin or an untrusted certificate
//! fails, plain HTTP to the TLS port is closed and the daemon keeps serving,
//! and a key rotation is accepted by both pins until the switch.

mod common;

use std::process::Command;

use common::*;

fn curl_available() -> bool {
    let ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "curl is required under CI=true"
        );
        eprintln!("skipping: curl is not installed");
    }
    ok
}

/// curl verifying as the snippet makes a server verify: the certificates
/// in `cacert` as the only trusted ones, the appliance's name in the URL,
/// `--connect-to` its address, these pins.
fn tls_curl(
    addr: std::net::SocketAddr,
    path: &str,
    pins: &str,
    cacert: &std::path::Path,
) -> Command {
    let port = addr.port();
    let name = banlight::snippet::TLS_NAME;
    let mut c = Command::new("curl");
    c.args(["--silent", "--max-time", "20", "--cacert"])
        .arg(cacert)
        .arg("--connect-to")
        .arg(format!("{name}:{port}:{}:{port}", addr.ip()))
        .arg("--pinnedpubkey")
        .arg(pins)
        .arg(format!("https://{name}:{port}{path}"));
    c
}

/// One request over TLS: (exit code, body and error text).
async fn curl(
    addr: std::net::SocketAddr,
    path: &str,
    pins: &str,
    cacert: &std::path::Path,
) -> (i32, String) {
    let mut c = tls_curl(addr, path, pins, cacert);
    c.arg("--show-error");
    tokio::task::spawn_blocking(move || {
        let out = c.output().expect("run curl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_tls_with_curl() {
    if !curl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(
        dir.path(),
        // generous: the handshake must fit in the header timeout, under qemu too
        "header_timeout = \"5s\"\n[tls]\nlisten = \"127.0.0.1:0\"\noverlap = \"1h\"\n",
    );
    let d = TestDaemon::start(&config).await;
    let daemon = d.daemon.as_ref().unwrap();
    let tls_addr = daemon.tls_addr.expect("TLS listener");
    let pins = banlight::tls::read_pins(&config.state_dir).unwrap();
    assert_eq!(pins.len(), 1);
    let key = config.state_dir.join("tls/key.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The server's copy of the certificate, as the snippet has it stored.
    let server_copy = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, banlight::tls::read_certs(&config.state_dir).unwrap()).unwrap();
        path
    };
    let first_copy = server_copy("first.pem");
    let curl = |addr, path: &'static str, pins: String, ca: std::path::PathBuf| async move {
        curl(addr, path, &pins, &ca).await
    };
    let p0 = || pins[0].clone();
    let ca1 = || first_copy.clone();

    // the right pin, the certificate fully verified
    let (code, body) = curl(tls_addr, "/red?jail=sshd&ip=198.51.100.1", p0(), ca1()).await;
    assert_eq!(code, 0, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["counted"].clone(), v["count"].clone()),
        (true.into(), 1.into())
    );
    let (code, body) = curl(tls_addr, "/api/status", p0(), ca1()).await;
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("\"total\":1"), "status over TLS: {body}");
    let (code, body) = curl(tls_addr, "/metrics", p0(), ca1()).await;
    assert_eq!(code, 0, "{body}");
    assert!(
        body.contains(r#"f2b_jail_banned_total{jail="sshd",route="red",source=""} 1"#),
        "metrics over TLS: {body}"
    );

    let (code, body) = curl(tls_addr, "/", p0(), ca1()).await;
    assert_eq!(code, 0, "{body}");
    assert!(
        body.to_ascii_lowercase().contains("<html") && body.contains("<title>banlight</title>"),
        "the live page over TLS: {}",
        &body[..body.len().min(300)]
    );

    // a wrong pin: curl refuses before sending anything (exit 90)
    let wrong = "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let (code, body) = curl(tls_addr, "/red?ip=198.51.100.2", wrong.into(), ca1()).await;
    assert_eq!(code, 90, "{body}");
    assert_eq!(d.status().await["total"], 1, "nothing counted");
    // a certificate the server does not trust (another appliance's): curl
    // refuses on verification even with the right pin (exit 60)
    let other = tempfile::tempdir().unwrap();
    banlight::tls::TlsState::open(other.path(), 0).unwrap();
    let stranger = dir.path().join("stranger.pem");
    std::fs::write(&stranger, banlight::tls::read_certs(other.path()).unwrap()).unwrap();
    let (code, body) = curl(tls_addr, "/red?ip=198.51.100.3", p0(), stranger).await;
    assert_eq!(code, 60, "{body}");
    assert_eq!(d.status().await["total"], 1, "nothing counted");

    // plain HTTP to the TLS port: closed without an HTTP answer
    let r = request_bytes(
        tls_addr,
        b"GET /red HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(!r.head.starts_with("HTTP/1.1 200"), "{r:?}");
    assert_eq!(d.status().await["total"], 1);
    // ...and both listeners keep serving
    assert_eq!(d.get("/red").await.json()["count"], 2);
    let (code, body) = curl(tls_addr, "/red", p0(), ca1()).await;
    assert_eq!(code, 0, "{body}");

    // rotation: both pins accepted, the old key served until the switch
    let v = daemon
        .control
        .handle(banlight::control::ControlRequest::TlsRotate { now: false })
        .await;
    let both: Vec<String> = serde_json::from_value(v["pins"].clone()).unwrap();
    assert_eq!(both.len(), 2, "{v}");
    assert_eq!(both[0], pins[0]);
    assert_eq!(banlight::tls::read_pins(&config.state_dir).unwrap(), both);
    let both_copy = server_copy("both.pem");
    let (code, body) = curl(tls_addr, "/red", both.join(";"), both_copy.clone()).await;
    assert_eq!(code, 0, "both pins: {body}");
    let (code, _) = curl(tls_addr, "/red", both[1].clone(), both_copy.clone()).await;
    assert_eq!(code, 90, "the new key is not served yet");
    // the snippet carries both pins
    let (snippet, _warnings) =
        banlight::cmd::hook::hook_snippet(&config, "red", "sshd", Some("pi".into()), None).unwrap();
    assert!(
        snippet.contains(&format!("--pinnedpubkey {} ", both.join(";")))
            && snippet.contains("--cacert /etc/fail2ban/banlight-")
            && !snippet.contains("--insecure"),
        "{snippet}"
    );
    assert!(snippet.contains("scheme=\"https\""), "{snippet}");

    // switch now: the new pin works, the old one fails
    let v = daemon
        .control
        .handle(banlight::control::ControlRequest::TlsRotate { now: true })
        .await;
    let now: Vec<String> = serde_json::from_value(v["pins"].clone()).unwrap();
    let current = banlight::tls::read_pins(&config.state_dir).unwrap();
    assert_eq!(current.len(), 1, "{now:?}");
    // (--now makes yet another key: after a leak, nobody keeps the old ones)
    let now_copy = server_copy("now.pem");
    let (code, body) = curl(tls_addr, "/red", current[0].clone(), now_copy).await;
    assert_eq!(code, 0, "{body}");
    let (code, _) = curl(tls_addr, "/red", both.join(";"), both_copy).await;
    assert_ne!(code, 0, "a server with the leaked keys is refused");
    let (code, _) = curl(tls_addr, "/red", p0(), ca1()).await;
    assert_ne!(code, 0, "a server never updated is refused");
    d.shutdown().await;
}

/// The HTTP status of one request over TLS (curl verifying as above).
fn curl_code(
    addr: std::net::SocketAddr,
    path: &str,
    pin: &str,
    cacert: &std::path::Path,
) -> String {
    let out = tls_curl(addr, path, pin, cacert)
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The per-client connection cap counts an address's connections on both
/// listeners together (holding the cap on the plain port leaves none on
/// the TLS port), and failing requests over TLS are rate-limited like
/// plain ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_and_rate_limit_hold_across_both_listeners() {
    if !curl_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(
        dir.path(),
        "header_timeout = \"30s\"\nmax_connections_per_client = 2\n[rate_limit]\nburst = 3\nper_minute = 1\n[tls]\nlisten = \"127.0.0.1:0\"\n",
    );
    let d = TestDaemon::start(&config).await;
    let tls_addr = d.daemon.as_ref().unwrap().tls_addr.expect("TLS listener");
    let pin = banlight::tls::read_pins(&config.state_dir).unwrap()[0].clone();
    let ca = dir.path().join("appliance.pem");
    std::fs::write(&ca, banlight::tls::read_certs(&config.state_dir).unwrap()).unwrap();

    // Read in-process: a status request from this address would be refused
    // while it is at its cap.
    let http = d.daemon.as_ref().unwrap().http.clone();
    // Two idle connections to the plain port: this address's whole share.
    let held: Vec<tokio::net::TcpStream> = vec![
        tokio::net::TcpStream::connect(d.addr).await.unwrap(),
        tokio::net::TcpStream::connect(d.addr).await.unwrap(),
    ];
    // Give the accept loop time to take both (it holds no slot otherwise).
    eventually(20, "both plain connections accepted", || {
        http.per_client.lock().unwrap().values().sum::<usize>() == 2
    })
    .await;
    let dropped_now = || {
        http.state
            .requests
            .dropped_connections
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let dropped = dropped_now();
    let (ca2, pin2) = (ca.clone(), pin.clone());
    let code = tokio::task::spawn_blocking(move || curl_code(tls_addr, "/api/status", &pin2, &ca2))
        .await
        .unwrap();
    assert_eq!(
        code, "000",
        "the TLS port is closed to an address at its cap"
    );
    assert!(dropped_now() > dropped, "counted as a dropped connection");
    drop(held);
    eventually(20, "the held connections released", || {
        http.per_client.lock().unwrap().is_empty()
    })
    .await;

    // Failing requests over TLS: the burst of 3, then 429.
    let (ca2, pin2) = (ca.clone(), pin.clone());
    let codes = tokio::task::spawn_blocking(move || {
        (0..5)
            .map(|_| curl_code(tls_addr, "/no-such-route", &pin2, &ca2))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // (The connection closed at the cap was charged too: 2 or 3 get through.)
    let passed = codes.iter().take_while(|c| *c == "404").count();
    assert!((2..=3).contains(&passed), "{codes:?}");
    assert!(codes[passed..].iter().all(|c| c == "429"), "{codes:?}");
    // ...and the same address is limited on the plain port too.
    assert_eq!(d.get("/no-such-route").await.status, 429);
    d.shutdown().await;
}
