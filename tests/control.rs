//! The maintenance CLI against a running daemon, per-server tokens, rate
//! limiting and config reload.

mod common;
use common::bin;

use std::path::Path;

use common::*;

/// Runs the real `banlight` binary with the daemon's socket.
fn cli(socket: &Path, args: &[&str]) -> (bool, String, String) {
    let out = bin::command()
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run banlight");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn socket_of(d: &TestDaemon) -> std::path::PathBuf {
    d.daemon
        .as_ref()
        .unwrap()
        .control
        .config
        .lock()
        .unwrap()
        .control_socket
        .clone()
}

/// `cli` off the async runtime's thread.
async fn run_cli(socket: &Path, args: &[&str]) -> (bool, String, String) {
    let socket = socket.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&socket, &args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dark_panel_still_reports_mode_and_brightness_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    let sock = socket_of(&d);
    d.press(banlight::core::buttons::Button::Power, 200).await;
    d.status_until(10, "dark", |s| s["panel"]["dark"] == true)
        .await;
    // Dark, the panel's frame does not change with the mode or the
    // brightness; status (and the MQTT panel topic read from it) still must.
    let (ok, out, _) = run_cli(&sock, &["mode", "24h"]).await;
    assert!(ok && out.contains("mode: 24h"), "{out}");
    let (ok, _, err) = run_cli(&sock, &["brightness", "20", "6"]).await;
    assert!(ok, "{err}");
    let s = d
        .status_until(10, "mode 24h and brightness 20 in status", |s| {
            s["mode"] == "24h" && s["panel"]["led_brightness"] == 20
        })
        .await;
    assert_eq!(s["panel"]["dark"], true, "still dark: {s}");
    assert!(d.panel.last().is_some_and(|f| !f.display_on));
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_against_a_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    let sock = socket_of(&d);
    d.get("/red?jail=sshd&ip=203.0.113.9").await;
    d.get("/red?jail=sshd&ip=203.0.113.10").await;
    d.get("/blue?jail=wordpress&ip=198.18.0.1&source=web-1")
        .await;

    // status, text and JSON
    let (ok, out, err) = run_cli(&sock, &["status"]).await;
    assert!(ok, "{err}");
    let red_line = out.lines().find(|l| l.starts_with("red ")).expect(&out);
    assert_eq!(red_line.split_whitespace().nth(1), Some("2"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("total") && l.split_whitespace().nth(1) == Some("3")),
        "{out}"
    );
    assert!(out.contains("mode total"), "{out}");
    let (ok, out, _) = run_cli(&sock, &["status", "--json"]).await;
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["total"], 3);
    assert_eq!(v["routes"]["blue"]["count"], 1);

    // events, filtered, as JSON and text
    let (ok, out, _) = run_cli(&sock, &["events", "--route", "red", "--json"]).await;
    assert!(ok);
    let events: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["ip"], "203.0.113.10", "newest first");
    assert_eq!(events[0]["jail"], "sshd");
    let (ok, out, _) = run_cli(&sock, &["events", "--since", "1h", "--limit", "1"]).await;
    assert!(ok);
    assert_eq!(out.lines().count(), 2, "header + 1 row:\n{out}");
    assert!(out.contains("web-1") && out.contains("198.18.0.1"), "{out}");
    let (ok, _, err) = run_cli(&sock, &["events", "--since", "yesterday"]).await;
    assert!(!ok && err.contains("--since"), "{err}");

    // test plays a sweep without counting
    let frames_before = d.panel.frames().len();
    let (ok, out, _) = run_cli(&sock, &["test", "green"]).await;
    assert!(ok, "{out}");
    let panel = d.panel.clone();
    eventually(5, "a green sweep", || {
        panel.frames()[frames_before..]
            .iter()
            .any(|(_, f)| f.leds.iter().any(|c| c.g > 200 && c.r == 0))
    })
    .await;
    assert_eq!(d.status().await["total"], 3, "test does not count");
    let (ok, _, err) = run_cli(&sock, &["test", "nope"]).await;
    assert!(!ok && err.contains("no route"), "{err}");

    // mode and brightness do what the buttons do
    let (ok, out, _) = run_cli(&sock, &["mode", "NEXT"]).await;
    assert!(ok && out.contains("mode: red"), "{out}");
    let (ok, out, _) = run_cli(&sock, &["mode", "24h"]).await;
    assert!(ok && out.contains("mode: 24h"), "{out}");
    d.status_until(10, "mode 24h in status", |s| s["mode"] == "24h")
        .await;
    let (ok, _, err) = run_cli(&sock, &["mode", "sideways"]).await;
    assert!(!ok && err.contains("no mode"), "{err}");
    let (ok, _, _) = run_cli(&sock, &["brightness", "20", "6"]).await;
    assert!(ok);
    eventually(5, "frames at the new brightness", || {
        panel
            .last()
            .is_some_and(|f| f.led_brightness == 20 && f.display_brightness == 6)
    })
    .await;
    let (ok, _, err) = run_cli(&sock, &["brightness", "40", "6"]).await;
    assert!(!ok && err.contains("0-31"), "{err}");

    // reset: refused without --yes when not on a terminal; recorded as an event
    let (ok, _, err) = run_cli(&sock, &["reset", "red"]).await;
    assert!(!ok && err.contains("--yes"), "{err}");
    assert_eq!(d.status().await["routes"]["red"]["count"], 2);
    let (ok, _, _) = run_cli(&sock, &["reset", "red", "--yes"]).await;
    assert!(ok);
    let s = d.status().await;
    assert_eq!(
        (s["routes"]["red"]["count"].clone(), s["total"].clone()),
        (0.into(), 1.into())
    );
    let (_, out, _) = run_cli(&sock, &["events", "--json", "--limit", "1"]).await;
    let events: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (events[0]["kind"].as_str(), events[0]["route"].as_str()),
        (Some("reset"), Some("red"))
    );
    let (ok, _, _) = run_cli(&sock, &["reset", "--yes"]).await;
    assert!(ok);
    assert_eq!(d.status().await["total"], 0);

    // reload without a file behind it says so
    let (ok, _, err) = run_cli(&sock, &["reload"]).await;
    assert!(!ok, "test configs are parsed from text, not a file: {err}");
    d.shutdown().await;
    assert!(!sock.exists(), "the socket is removed on shutdown");

    let (ok, _, err) = run_cli(&sock, &["status"]).await;
    assert!(!ok && err.contains("not running"), "{err}");
}

#[tokio::test]
async fn admin_operations_are_not_on_the_tcp_listener() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    for path in [
        "/api/reset",
        "/api/reload",
        "/api/events",
        "/api/mode",
        "/reset",
    ] {
        for method in ["GET", "POST"] {
            let r = request(
                d.addr,
                &format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
            )
            .await;
            assert_eq!(r.status, 404, "{method} {path}");
        }
    }
    d.shutdown().await;
}

const SOURCES: &str = r#"
[[source]]
name = "web-1"
token = "web1-token-0123456789abcdef"
routes = ["blue"]
[[source]]
name = "ssh-1"
token = "ssh1-token-0123456789abcdef"
"#;

#[tokio::test]
async fn tokens_gate_hooks_and_name_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), SOURCES)).await;
    let with_auth = |path: &str, auth: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}\r\n")
    };
    let r = d.get("/red").await;
    assert_eq!(r.status, 401);
    assert!(r.head.to_lowercase().contains("www-authenticate: bearer"));
    assert_eq!(
        request(
            d.addr,
            &with_auth("/red", "Authorization: Bearer wrong-token-0123456789\r\n")
        )
        .await
        .status,
        401
    );
    assert_eq!(
        request(
            d.addr,
            &with_auth("/red", "Authorization: Basic d2ViMQ==\r\n")
        )
        .await
        .status,
        401
    );
    // web-1 may only post to blue
    let r = request(
        d.addr,
        &with_auth(
            "/red",
            "Authorization: Bearer web1-token-0123456789abcdef\r\n",
        ),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = request(
        d.addr,
        &with_auth(
            "/blue?jail=wp&ip=198.18.0.7",
            "Authorization: Bearer web1-token-0123456789abcdef\r\n",
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // ?token= for the simplest curl line; a claimed source= cannot override the token's
    let r = d
        .get("/red?token=ssh1-token-0123456789abcdef&source=web-1")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // a server that got itself rate-limited by mistakes still gets its real bans in
    let server = [127, 0, 0, 88];
    for _ in 0..40 {
        request_from(
            server,
            d.addr,
            "GET /typo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
    }
    assert_eq!(
        request_from(
            server,
            d.addr,
            "GET /red HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .await
        .status,
        429
    );
    let r = request_from(
        server,
        d.addr,
        &with_auth(
            "/red?ip=198.18.3.3",
            "Authorization: Bearer ssh1-token-0123456789abcdef\r\n",
        ),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "a valid token passes the limiter: {}",
        r.body
    );
    let s = d.status().await;
    assert_eq!(s["total"], 3, "refused requests counted nothing");
    assert_eq!(s["auth"], "token");
    assert_eq!(s["requests"]["unauthorized"], 4);
    let q = banlight::ledger::EventQuery {
        since_ms: 0,
        route: None,
        limit: 10,
        ..Default::default()
    };
    let events = d.daemon.as_ref().unwrap().ledger.events(q).await.unwrap();
    let sources: Vec<_> = events.iter().map(|e| e.source.clone().unwrap()).collect();
    assert_eq!(sources, ["ssh-1", "ssh-1", "web-1"]);
    d.shutdown().await;
}

#[tokio::test]
async fn scanners_are_rate_limited_per_address_and_counted_in_status() {
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(
        dir.path(),
        "[rate_limit]\nburst = 5\nper_minute = 6\n",
    ))
    .await;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let scanner = [127, 0, 0, 66];
    for _ in 0..5 {
        assert_eq!(
            request_from(scanner, d.addr, &get("/wp-login.php"))
                .await
                .status,
            404
        );
    }
    for path in ["/wp-login.php", "/red", "/api/status"] {
        assert_eq!(
            request_from(scanner, d.addr, &get(path)).await.status,
            429,
            "{path}"
        );
    }
    // another address is unaffected, and valid hooks from it cost nothing
    let server = [127, 0, 0, 77];
    for i in 0..20 {
        let r = request_from(
            server,
            d.addr,
            &get(&format!("/red?jail=sshd&ip=198.18.1.{i}")),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let s = d.status().await;
    assert_eq!(s["total"], 20);
    assert_eq!(s["requests"]["rate_limited"], 3);
    assert_eq!(s["requests"]["refused"], 5);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_good_config_and_rejects_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let (file, config) = config_file(
        dir.path(),
        "[[route]]\nname = \"red\"\ncolor = \"#ff0000\"\n",
    );
    let base = base_config(dir.path());
    let d = TestDaemon::start(&config).await;
    let sock = socket_of(&d);
    assert_eq!(d.get("/red").await.status, 200);
    assert_eq!(d.get("/orange").await.status, 404);

    // good: a new route and a token requirement, counts kept
    std::fs::write(
        &file,
        format!("{base}[[route]]\nname = \"red\"\ncolor = \"#ff0000\"\n[[route]]\nname = \"orange\"\ncolor = \"#ff8000\"\nlabel = \"OrAn\"\n{SOURCES}").replace("routes = [\"blue\"]", "routes = [\"orange\"]"),
    )
    .unwrap();
    let (ok, out, err) = run_cli(&sock, &["reload"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("2 routes, 2 sources"), "{out}");
    assert_eq!(d.get("/orange").await.status, 401, "tokens now required");
    let r = d.get("/orange?token=web1-token-0123456789abcdef").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["total"], 2, "count from before the reload kept");

    // bad: rejected with file, line and key; the old config stays
    std::fs::write(
        &file,
        format!("{base}[[route]]\nname = \"red\"\ncolor = \"crimson\"\n"),
    )
    .unwrap();
    let (ok, _, err) = run_cli(&sock, &["reload"]).await;
    assert!(!ok);
    assert!(
        err.contains("banlight.toml:5")
            && err.contains("route[0].color")
            && err.contains("old config stays"),
        "{err}"
    );
    assert_eq!(
        d.get("/orange?token=web1-token-0123456789abcdef")
            .await
            .status,
        200,
        "old config in force"
    );

    // revoking a server is deleting its table and reloading
    std::fs::write(
        &file,
        format!("{base}[[route]]\nname = \"orange\"\ncolor = \"#ff8000\"\nlabel = \"OrAn\"\n[[source]]\nname = \"ssh-1\"\ntoken = \"ssh1-token-0123456789abcdef\"\n"),
    )
    .unwrap();
    assert!(run_cli(&sock, &["reload"]).await.0);
    assert_eq!(
        d.get("/orange?token=web1-token-0123456789abcdef")
            .await
            .status,
        401
    );
    assert_eq!(
        d.get("/orange?token=ssh1-token-0123456789abcdef")
            .await
            .status,
        200
    );
    d.shutdown().await;
}

#[test]
fn hook_prints_a_ready_jail_snippet() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("banlight.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"0.0.0.0:8080\"\nstate_dir = \"{}\"\n{SOURCES}",
            dir.path().display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = bin::command()
            .arg("--config")
            .arg(&file)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["hook", "red", "--host", "pi.lan"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("[sshd]\nenabled = true\naction = %(action_)s\n"),
        "{out}"
    );
    assert!(out.contains("banlight[host=\"pi.lan\", port=\"8080\", route=red, token_file=\"/etc/fail2ban/banlight-ssh-1.token\"]"), "{out}");
    assert!(
        out.contains("fail2ban-client -t && fail2ban-client restart sshd"),
        "{out}"
    );
    assert!(
        !err.contains("warning"),
        "--host given, listening on all addresses: {err}"
    );
    let (ok, out, err) = run(&["hook", "red"]);
    assert!(
        ok && err.contains("warning: no --host given") && out.starts_with('#'),
        "warnings on stderr, the snippet alone on stdout: {err}"
    );
    assert!(
        out.contains("Bearer ssh1-token-0123456789abcdef"),
        "the only source allowed on red: {out}"
    );
    let (ok, _, err) = run(&["hook", "blue", "--host", "pi.lan"]);
    assert!(
        !ok && err.contains("--source"),
        "two sources may post to blue: {err}"
    );
    let (ok, out, _) = run(&[
        "hook",
        "blue",
        "--host",
        "pi.lan",
        "--source",
        "web-1",
        "--jail",
        "wordpress",
    ]);
    assert!(
        ok && out.contains("[wordpress]") && out.contains("web1-token"),
        "{out}"
    );
    let (ok, _, err) = run(&["hook", "mauve"]);
    assert!(!ok && err.contains("no route"), "{err}");
}

/// `banlight hook --script`, run as printed (`sh`, in the shipped fail2ban/
/// folder) under a scratch root that holds a server's stock /etc/fail2ban:
/// the real fail2ban-client accepts the config it writes, and the token
/// file it writes is one the desk counts a curl with.
#[tokio::test]
async fn hook_script_run_as_printed_yields_a_config_fail2ban_accepts_and_a_counted_curl() {
    let stock = Path::new("/etc/fail2ban/jail.conf");
    let fail2ban = std::process::Command::new("fail2ban-client")
        .arg("--version")
        .output()
        .is_ok();
    if !(fail2ban && stock.exists() && common::curl::present()) {
        assert!(
            std::env::var("CI").is_err(),
            "fail2ban is required under CI"
        );
        eprintln!("SKIPPED: fail2ban (fail2ban-client, /etc/fail2ban) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (file, config) = config_file(dir.path(), SOURCES);
    let d = TestDaemon::start(&config).await;
    let out = bin::command()
        .arg("--config")
        .arg(&file)
        .args(["hook", "red", "--host", "127.0.0.1", "--script"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = dir.path().join("setup-sshd.sh");
    std::fs::write(&script, &out.stdout).unwrap();
    // A server: the stock config, an sshd log to watch.
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let cp = std::process::Command::new("cp")
        .arg("-r")
        .arg("/etc/fail2ban")
        .arg(root.join("etc"))
        .status()
        .unwrap();
    assert!(cp.success());
    std::fs::write(root.join("auth.log"), "").unwrap();
    std::fs::write(
        root.join("etc/fail2ban/jail.d/00-this-server.local"),
        format!(
            "[sshd]\nbackend = polling\nlogpath = {}\n",
            root.join("auth.log").display()
        ),
    )
    .unwrap();
    let run = std::process::Command::new("sh")
        .arg(&script)
        .env("ROOT", &root)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fail2ban"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the script as printed: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let jail =
        std::fs::read_to_string(root.join("etc/fail2ban/jail.d/banlight-sshd.local")).unwrap();
    assert!(jail.contains("banlight[host=\"127.0.0.1\""), "{jail}");
    assert!(root.join("etc/fail2ban/action.d/banlight.conf").exists());
    assert!(root.join("usr/local/libexec/banlight-deliver").exists());
    let token = root.join("etc/fail2ban/banlight-ssh-1.token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "root's alone");
    let header = format!("@{}", token.display());
    let url = format!("http://{}/red?jail=sshd&ip=203.0.113.9", d.addr);
    let answer = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-s", "--max-time", "3", "-H", &header, &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let body = String::from_utf8_lossy(&answer.stdout);
    assert!(body.contains("\"counted\":true"), "{body}");
    d.shutdown().await;
}

/// `banlight hook` without --config uses the running daemon's config (its
/// tokens and sources), and says so; with no daemon and no file it says
/// loudly that it prints the open built-in defaults.
#[tokio::test]
async fn hook_without_config_uses_the_running_daemons_config() {
    let dir = tempfile::tempdir().unwrap();
    let (_file, config) = config_file(dir.path(), SOURCES);
    let d = TestDaemon::start(&config).await;
    let socket = socket_of(&d);
    let (ok, out, err) = run_cli(&socket, &["hook", "red", "--host", "pi.lan"]).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("using the running daemon's config") && err.contains("banlight.toml"),
        "says whose config: {err}"
    );
    assert!(
        out.contains("token_file=\"/etc/fail2ban/banlight-ssh-1.token\""),
        "the daemon's source and token, not the open defaults: {out}"
    );
    d.shutdown().await;
    let (ok, out, err) = run_cli(&socket, &["hook", "red", "--host", "pi.lan"]).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("no running daemon: using the built-in defaults (open: no tokens"),
        "{err}"
    );
    assert!(!out.contains("token_file"), "{out}");
}

/// A regular file at `control_socket` (say, the database named by mistake)
/// is an error naming the path, and the file is left alone.
#[tokio::test]
async fn a_regular_file_at_the_control_socket_path_is_never_removed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("precious.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let config = test_config(
        dir.path(),
        &format!("control_socket = \"{}\"\n", victim.display()),
    );
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let err = banlight::daemon::start(
        &config,
        Some(listener),
        Box::new(banlight::panel::memory::MemoryPanel::new()),
        banlight::panel::Clock::start(),
        rx,
        std::future::pending(),
    )
    .await
    .err()
    .expect("refuses to start")
    .to_string();
    assert!(err.contains(&victim.display().to_string()), "{err}");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
}

/// 1,100 idle control connections neither exhaust the daemon's
/// descriptors nor stop hooks; the CLI works again once they time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_control_connections_are_capped_and_hooks_keep_working() {
    // The test process is the daemon too: let it hold the 1,100 client ends.
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let d = TestDaemon::start(&test_config(dir.path(), "")).await;
    let sock = socket_of(&d);
    let fds_before = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match tokio::net::UnixStream::connect(&sock).await {
            Ok(s) => idle.push(s),
            Err(_) => break, // backlog full: the daemon is shedding, as it should
        }
    }
    assert!(idle.len() >= 200, "only {} connections made", idle.len());
    assert_eq!(d.get("/red?ip=192.0.2.1").await.status, 200);
    // The daemon's side holds at most the cap; the test's own ends are `idle`.
    let mut held = 0;
    eventually(20, "the daemon sheds connections over the cap", || {
        held = std::fs::read_dir("/proc/self/fd").unwrap().count();
        // backlogged connections hold no daemon fd yet: wait for the shedding too
        held <= fds_before + idle.len() + banlight::control::MAX_CONTROL_CONNECTIONS + 16
            && banlight::control::CONTROL_SHED.load(std::sync::atomic::Ordering::Relaxed) > 0
    })
    .await;
    // Idle holders time out (5 s read timeout) and free their slots.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (ok, out, err) = run_cli(&sock, &["status"]).await;
        if ok {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CLI never got a slot back: {out}{err}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(idle);
    assert_eq!(d.get("/red?ip=192.0.2.2").await.status, 200);
    d.shutdown().await;
}

/// `banlight press`: the CLI's presses enter where GPIO edges enter, so a
/// short mode press moves the display on, a short power press darkens the
/// panel, a long one runs the shutdown command, and a bad name is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn press_from_the_cli_acts_like_the_buttons() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("powered-off");
    let extra = format!(
        "shutdown_command = \"touch {}\"\n[panel]\nlong_press = \"300ms\"\n",
        marker.display()
    );
    let d = TestDaemon::start(&test_config(dir.path(), &extra)).await;
    let sock = socket_of(&d);
    let before = d.status().await["mode"].clone();

    let (ok, out, err) = run_cli(&sock, &["press", "mode"]).await;
    assert!(ok && out.contains("pressed mode for 100 ms"), "{out}{err}");
    d.status_until(10, "the mode moved on", |s| s["mode"] != before)
        .await;

    let (ok, _, err) = run_cli(&sock, &["press", "power"]).await;
    assert!(ok, "{err}");
    d.status_until(10, "dark after a short power press", |s| {
        s["panel"]["dark"] == true
    })
    .await;
    assert!(!marker.exists(), "a short press must not shut down");

    let (ok, _, err) = run_cli(&sock, &["press", "reset"]).await;
    assert!(!ok && err.contains("use mode or power"), "{err}");
    let (ok, _, err) = run_cli(&sock, &["press", "power", "--hold", "1h"]).await;
    assert!(!ok && err.contains("longer than"), "{err}");

    let (ok, out, err) = run_cli(&sock, &["press", "power", "--hold", "0.5s"]).await;
    assert!(ok && out.contains("pressed power for 500 ms"), "{out}{err}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the long press never ran the shutdown command"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    d.shutdown().await;
}
