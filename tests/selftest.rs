//! `banlight selftest` as a user runs it, on the record panel: what it
//! prints, what it draws, and its exit status.

mod common;
use common::bin;
use std::process::Stdio;

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("banlight.toml");
    std::fs::write(
        &path,
        format!(
            "[panel]\nbackend = \"record\"\nrecord_path = \"{}\"\nled_brightness = 5\n",
            dir.join("frames.jsonl").display()
        ),
    )
    .unwrap();
    path
}

fn frames(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("frames.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn walks_the_leds_and_digits_without_buttons() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin::command()
        .arg("--config")
        .arg(config(dir.path()))
        .args(["selftest", "--no-buttons", "--step", "0ms"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "selftest on the record panel",
        "LED 1/8: red green blue white",
        "LED 8/8: red green blue white",
        "digit 4: 8 (all seven segments)",
        "a \"colon\" module",
        "colon: (shown on the module only",
        "Buttons: skipped",
        "no errors",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }
    let f = frames(dir.path());
    let leds = |i: usize| f[i]["leds"].as_array().unwrap().clone();
    // LED 0 red, green, blue, white; then LED 1 red
    let rgb = |v: &serde_json::Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    };
    assert_eq!(rgb(&leds(0)[0]), [255, 0, 0]);
    assert_eq!(rgb(&leds(1)[0]), [0, 255, 0]);
    assert_eq!(rgb(&leds(2)[0]), [0, 0, 255]);
    assert_eq!(rgb(&leds(3)[0]), [255, 255, 255]);
    assert_eq!(rgb(&leds(4)[1]), [255, 0, 0]);
    assert_eq!(rgb(&leds(4)[0]), [0, 0, 0]);
    assert_eq!(f[0]["brightness"], 5);
    let last = f.last().unwrap();
    assert_eq!(last["display_on"], false);
    assert!(last["leds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| rgb(c) == [0, 0, 0]));
    // the default colon module: the brightness walk without points
    let eights = f.iter().filter(|x| x["display"] == "8888").count();
    assert_eq!(eights, 8);
    assert!(
        f.iter()
            .all(|x| !x["display"].as_str().unwrap().contains('.')),
        "no point is drawn for a colon module"
    );
}

#[test]
fn an_unpressed_button_fails_the_selftest() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin::command()
        .arg("--config")
        .arg(config(dir.path()))
        .args(["selftest", "--step", "0ms", "--button-timeout", "200ms"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("press MODE now, BCM 17 (pin 11)"),
        "{stdout}"
    );
    assert!(stdout.contains("selftest found 2 problem(s)"), "{stdout}");
}

/// Issue 20, item 2: beside a running daemon both processes would drive the
/// same pins (rppal only tracks pins per process), and a 3 s press during
/// the selftest would shut the Pi down through the service. The selftest
/// refuses, with the command that stops the service: when the state_dir
/// lock is held, and when something answers on the control socket.
#[test]
fn refuses_beside_a_running_daemon_and_names_the_stop_command() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let socket = dir.path().join("ctl.sock");
    let path = dir.path().join("banlight.toml");
    std::fs::write(
        &path,
        format!(
            "state_dir = \"{}\"\ncontrol_socket = \"{}\"\n[panel]\nbackend = \"record\"\nrecord_path = \"{}\"\n",
            state.display(),
            socket.display(),
            dir.path().join("frames.jsonl").display()
        ),
    )
    .unwrap();
    let selftest = || {
        bin::command()
            .arg("--config")
            .arg(&path)
            .args(["selftest", "--no-buttons", "--step", "0ms"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // A daemon holds the state_dir lock.
    let lock = banlight::statelock::StateLock::acquire(&state).unwrap();
    let out = selftest();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sudo systemctl stop banlight"), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
    assert!(!dir.path().join("frames.jsonl").exists(), "nothing drawn");
    drop(lock);
    // A daemon answers on the control socket (its lock elsewhere).
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let out = selftest();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&socket.display().to_string()), "{stderr}");
    assert!(stderr.contains("sudo systemctl stop banlight"), "{stderr}");
    drop(listener);
    std::fs::remove_file(&socket).unwrap();
    // Nothing running: the selftest runs.
    let out = selftest();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
