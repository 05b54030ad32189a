//! The ignore list: hooks for listed networks are answered, logged as
//! `ignored` and never counted; `banlight events --ignored` lists them;
//! `banlight reload` changes the list.

mod common;
use common::bin;

use std::path::PathBuf;

use common::*;

async fn cli(socket: PathBuf, args: &[&str]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = bin::command()
            .arg("--socket")
            .arg(&socket)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run banlight");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_networks_are_logged_not_counted_and_reloadable() {
    let dir = tempfile::tempdir().unwrap();
    let (file, config) = config_file(
        dir.path(),
        "ignore = [\"203.0.113.0/24\", \"2001:db8:1::/48\"]\n",
    );
    let base = base_config(dir.path());
    let d = TestDaemon::start(&config).await;
    let sock = config.control_socket.clone();

    for ip in ["203.0.113.9", "2001:db8:1::7", "::ffff:203.0.113.10"] {
        let r = d
            .get(&format!("/red?jail=sshd&ip={}", ip.replace(':', "%3A")))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.json(),
            serde_json::json!({"route": "red", "count": 0, "total": 0, "counted": false, "reason": "ignored"}),
            "{ip}"
        );
    }
    let r = d.get("/red?jail=sshd&ip=198.51.100.1").await;
    assert_eq!(r.json()["counted"], true, "{}", r.body);
    assert_eq!(r.json()["count"], 1);
    assert!(r.json().get("reason").is_none());
    assert_eq!(d.status().await["routes"]["red"]["count"], 1);

    let (ok, out, err) = cli(sock.clone(), &["events", "--ignored", "--json"]).await;
    assert!(ok, "{err}");
    let ignored: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(ignored.len(), 3, "{out}");
    assert!(ignored.iter().all(|e| e["kind"] == "ignored"), "{out}");
    assert_eq!(ignored[2]["ip"], "203.0.113.9");
    let (ok, out, _) = cli(sock.clone(), &["events", "--json"]).await;
    assert!(ok);
    let counted: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(
        counted.len(),
        1,
        "the default listing leaves ignored out: {out}"
    );
    assert_eq!(counted[0]["ip"], "198.51.100.1");

    // off the list after a reload: the same address now counts (an ignored
    // ban is not remembered by dedupe)
    std::fs::write(&file, format!("{base}ignore = [\"2001:db8:1::/48\"]\n")).unwrap();
    let (ok, _, err) = cli(sock.clone(), &["reload"]).await;
    assert!(ok, "{err}");
    let r = d.get("/red?jail=sshd&ip=203.0.113.9").await;
    assert_eq!(r.json()["counted"], true, "{}", r.body);
    assert_eq!(r.json()["count"], 2);
    let r = d.get("/red?jail=sshd&ip=2001%3Adb8%3A1%3A%3A8").await;
    assert_eq!(r.json()["reason"], "ignored", "{}", r.body);

    // a bad entry is refused with file, line and key; the old list stays
    std::fs::write(&file, format!("{base}ignore = [\"office\"]\n")).unwrap();
    let (ok, _, err) = cli(sock.clone(), &["reload"]).await;
    assert!(!ok);
    assert!(
        err.contains("banlight.toml:3") && err.contains("ignore"),
        "{err}"
    );
    let r = d.get("/red?jail=sshd&ip=2001%3Adb8%3A1%3A%3A9").await;
    assert_eq!(r.json()["reason"], "ignored", "{}", r.body);
    d.shutdown().await;
}
