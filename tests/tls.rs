//! The TLS listener with the real curl: the right pin works, a wrong pin
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

/// curl over TLS with these pins; (exit code, body).
async fn curl(addr: std::net::SocketAddr, path: &str, pins: &str) -> (i32, String) {
    let url = format!("https://{addr}{path}");
    let pins = pins.to_string();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--max-time",
                "20",
                "--insecure",
                "--pinnedpubkey",
            ])
            .arg(&pins)
            .arg(&url)
            .output()
            .expect("run curl");
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

    // the right pin
    let (code, body) = curl(tls_addr, "/red?jail=sshd&ip=198.51.100.1", &pins[0]).await;
    assert_eq!(code, 0, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["counted"].clone(), v["count"].clone()),
        (true.into(), 1.into())
    );
    let (code, body) = curl(tls_addr, "/api/status", &pins[0]).await;
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("\"total\":1"), "status over TLS: {body}");
    let (code, body) = curl(tls_addr, "/metrics", &pins[0]).await;
    assert_eq!(code, 0, "{body}");
    assert!(
        body.contains(r#"f2b_jail_banned_total{jail="sshd",route="red",source=""} 1"#),
        "metrics over TLS: {body}"
    );

    // a wrong pin: curl refuses before sending anything (exit 90)
    let wrong = "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let (code, body) = curl(tls_addr, "/red?ip=198.51.100.2", wrong).await;
    assert_eq!(code, 90, "{body}");
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
    let (code, body) = curl(tls_addr, "/red", &pins[0]).await;
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
    let (code, body) = curl(tls_addr, "/red", &both.join(";")).await;
    assert_eq!(code, 0, "both pins: {body}");
    let (code, _) = curl(tls_addr, "/red", &both[1]).await;
    assert_eq!(code, 90, "the new key is not served yet");
    // the snippet carries both pins
    let (snippet, _warnings) =
        banlight::admin::hook_snippet(&config, "red", "sshd", Some("pi".into()), None).unwrap();
    assert!(
        snippet.contains(&format!("--pinnedpubkey '{}'", both.join(";"))),
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
    let (code, body) = curl(tls_addr, "/red", &current[0]).await;
    assert_eq!(code, 0, "{body}");
    let (code, _) = curl(tls_addr, "/red", &pins[0]).await;
    assert_eq!(code, 90, "the first key is gone");
    d.shutdown().await;
}
