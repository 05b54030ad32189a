//! Starts the banlight binary that cargo built for this test's target.
//!
//! Under `cargo test --target aarch64-unknown-linux-gnu` the tests run in
//! qemu-user (the `runner` in .cargo/config.toml), and so does anything they
//! start, provided the kernel knows to hand foreign binaries to qemu
//! (binfmt_misc). CI machines and containers often lack that: there the
//! binary cannot be exec'd (ENOEXEC), and it is started through
//! `qemu-<arch>-static -L /usr/<triple>` explicitly. BANLIGHT_TEST_RUNNER
//! (a command line, split on spaces) overrides the choice.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub const EXE: &str = env!("CARGO_BIN_EXE_banlight");

/// What to put in front of the binary, if anything.
fn runner() -> &'static [String] {
    static RUNNER: OnceLock<Vec<String>> = OnceLock::new();
    RUNNER.get_or_init(|| {
        if let Ok(r) = std::env::var("BANLIGHT_TEST_RUNNER") {
            return r.split_whitespace().map(str::to_string).collect();
        }
        if runs(&[]) {
            return Vec::new();
        }
        // Under qemu-user a failed exec may show up as ENOEXEC or as a
        // child that exits 127, depending on how the spawn was emulated.
        let qemu: Vec<String> = match std::env::consts::ARCH {
            "aarch64" => vec![
                "qemu-aarch64-static".into(),
                "-L".into(),
                "/usr/aarch64-linux-gnu".into(),
            ],
            // the static ARMv6 build (cross/test-armv6): no sysroot, and the
            // Pi Zero's core, so an ARMv7 instruction fails the test
            "arm" if cfg!(target_env = "musl") => {
                vec!["qemu-arm-static".into(), "-cpu".into(), "arm1176".into()]
            }
            "arm" => vec![
                "qemu-arm-static".into(),
                "-L".into(),
                "/usr/arm-linux-gnueabihf".into(),
            ],
            arch => panic!("{EXE} --version fails, and there is no qemu fallback for {arch}"),
        };
        assert!(
            runs(&qemu),
            "{EXE} runs neither directly nor through {qemu:?}"
        );
        qemu
    })
}

/// Does `[runner..] EXE --version` work?
fn runs(runner: &[String]) -> bool {
    let mut c = match runner {
        [] => Command::new(EXE),
        [program, args @ ..] => {
            let mut c = Command::new(program);
            c.args(args).arg(EXE);
            c
        }
    };
    c.arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("banlight")
        })
}

/// A `Command` for the banlight binary (through qemu when needed).
pub fn command() -> Command {
    match runner() {
        [] => Command::new(EXE),
        [program, args @ ..] => {
            let mut c = Command::new(program);
            c.args(args).arg(EXE);
            c
        }
    }
}

/// A config for a spawned daemon: any free loopback port, state in
/// `dir/state`, frames recorded to `dir/<frames>`.
pub fn record_config(dir: &std::path::Path, frames: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n[panel]\nbackend = \"record\"\nrecord_path = \"{}\"\n",
        dir.join("state").display(),
        dir.join(frames).display()
    )
}

/// The daemon on `config`, logging at info level to a piped stderr (where
/// tests read its address and what it did).
pub fn spawn_daemon(config: &std::path::Path) -> std::process::Child {
    command()
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn banlight")
}

/// `spawn_daemon`, once the daemon has logged the address it listens on;
/// the rest of its stderr is drained on a thread, so it never blocks on a
/// full pipe.
pub fn spawn_listening(config: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = spawn_daemon(config);
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("banlight exited early").unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    (child, addr)
}
