//! `banlight doctor` (issue 20): what an owner checks on the Pi before and
//! after wiring, without driving anything the daemon owns. It gathers
//! [`Facts`] (the board, who holds each configured pin, the idle levels of
//! the pulled-up lines, how exact this board's busy waits are, whether the
//! service user may power off and open the GPIO and SPI devices, free space
//! and clock sync), then [`diagnose`] turns them into one line per check,
//! each problem with its fix in one line. Gathering the pins works on any
//! [`PanelGpio`], so `cargo test` plays every fault on gpio-sim.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use embedded_hal::delay::DelayNs;

use crate::cli::SYSTEM_CONFIG;
use crate::config::{Backend, Config, PanelConfig};
use crate::panel::pi::gpio::{busy_hint, PanelGpio, LED_HALF_PERIOD_NS};
use crate::panel::pi::tm1637::{OpenDrainLine, BIT_DELAY_US};
use crate::panel::pi::{gnd_beside, physical_pin, pin_name};

/// The system user the package runs the service as.
pub const SERVICE_USER: &str = "banlight";

/// Below this, a full disk is near: SQLite cannot commit.
const LOW_SPACE_BYTES: u64 = 50 * 1024 * 1024;

/// What a pin should read while nothing drives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Pulled up (the TM1637 module's resistors, the buttons' pull-up).
    High,
    /// Driven only by banlight (the LED lines): not read.
    Driven,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    High,
    Low,
    NotRead(String),
}

#[derive(Debug, Clone)]
pub struct PinFact {
    pub role: &'static str,
    pub key: &'static str,
    pub bcm: u64,
    pub idle: Idle,
    /// The consumer the kernel's line info names, if any. `None` is also
    /// what an unreadable line info gives, so it reads "no holder seen",
    /// never "free".
    pub holder: Option<String>,
    pub level: Reading,
}

/// One busy wait, asked for `want_ns`, timed `runs` times.
#[derive(Debug, Clone)]
pub struct DelayFact {
    pub what: &'static str,
    pub want_ns: u64,
    pub median_ns: u64,
    pub max_ns: u64,
    pub runs: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Yes,
    Missing,
    Denied(String),
    NotChecked(String),
}

#[derive(Debug, Clone)]
pub struct DeviceFact {
    pub path: PathBuf,
    pub why: &'static str,
    pub access: Access,
}

/// Everything the doctor measured; [`diagnose`] reads only this.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The device tree's model, `None` off a device-tree machine.
    pub model: Option<String>,
    /// The model as rppal knows it, or why it does not.
    pub rppal: Result<String, String>,
    pub backend: Backend,
    /// Why the pins' levels were not read (a running daemon), if so.
    pub daemon: Option<String>,
    /// Why the GPIO could not be opened at all (then `pins` is empty).
    pub no_gpio: Option<String>,
    pub pins: Vec<PinFact>,
    pub delays: Vec<DelayFact>,
    /// `power::describe`'s word for logind's CanPowerOff as the service
    /// user, or why it was not asked.
    pub power_off: Result<String, String>,
    /// Whose access the devices and power-off were checked as.
    pub checked_as: String,
    pub devices: Vec<DeviceFact>,
    pub state_dir: PathBuf,
    pub free_bytes: Result<u64, String>,
    pub clock_synced: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Problem,
    /// Not checked here, and why is in the text.
    Skipped,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub verdict: Verdict,
    pub text: String,
    pub fix: Option<String>,
}

fn finding(verdict: Verdict, text: String, fix: Option<String>) -> Finding {
    Finding { verdict, text, fix }
}

/// The pins the config names, in wiring order.
pub fn configured_pins(p: &PanelConfig) -> Vec<(&'static str, &'static str, u64, Idle)> {
    let mut pins = Vec::new();
    if p.led_spi.is_none() {
        pins.push((
            "LED data",
            "blinkt_data_pin",
            p.blinkt_data_pin,
            Idle::Driven,
        ));
        pins.push((
            "LED clock",
            "blinkt_clock_pin",
            p.blinkt_clock_pin,
            Idle::Driven,
        ));
    }
    pins.push(("TM1637 CLK", "tm1637_clk_pin", p.tm1637_clk_pin, Idle::High));
    pins.push(("TM1637 DIO", "tm1637_dio_pin", p.tm1637_dio_pin, Idle::High));
    pins.push((
        "MODE button",
        "mode_button_pin",
        p.mode_button_pin,
        Idle::High,
    ));
    pins.push((
        "POWER button",
        "power_button_pin",
        p.power_button_pin,
        Idle::High,
    ));
    pins
}

/// Who holds each configured pin (the kernel's line info, read without
/// requesting anything) and, when `read` is `Ok`, the idle level of the
/// pulled-up ones: each is taken as an input with pull-up, read once the
/// module's RC has had 1 ms to rise (100 µs at worst), and let go. Nothing
/// is driven. With `read` an `Err`, the levels say why they were not read.
pub fn probe_pins<G: PanelGpio>(
    gpio: &mut G,
    p: &PanelConfig,
    read: Result<(), String>,
) -> Vec<PinFact> {
    configured_pins(p)
        .into_iter()
        .map(|(role, key, bcm, idle)| {
            let holder = gpio.line_holder(bcm);
            let level = match (&read, idle, &holder) {
                (Err(why), _, _) => Reading::NotRead(why.clone()),
                (_, Idle::Driven, _) => {
                    Reading::NotRead("driven by banlight, not pulled up".into())
                }
                (_, _, Some(h)) => Reading::NotRead(format!("held by \"{h}\"")),
                (Ok(()), Idle::High, None) => match gpio.open_drain(bcm, role) {
                    Ok(mut line) => {
                        gpio.delay().delay_us(1000);
                        match line.is_high() {
                            Ok(true) => Reading::High,
                            Ok(false) => Reading::Low,
                        }
                    }
                    Err(e) => Reading::NotRead(format!("{e:#}")),
                },
            };
            PinFact {
                role,
                key,
                bcm,
                idle,
                holder,
                level,
            }
        })
        .collect()
}

/// Times the drivers' two busy waits (the LED clock's half period and the
/// TM1637's bit delay) `runs` times each against `now_ns`, the clock the
/// delays are kept against (the monotonic clock on a Pi).
pub fn measure_delays<D: DelayNs>(
    delay: &mut D,
    now_ns: &dyn Fn() -> u64,
    runs: usize,
) -> Vec<DelayFact> {
    let waits: [(&'static str, u64); 2] = [
        ("LED clock half period", u64::from(LED_HALF_PERIOD_NS)),
        ("TM1637 bit delay", u64::from(BIT_DELAY_US) * 1000),
    ];
    waits
        .into_iter()
        .map(|(what, want_ns)| {
            let mut took: Vec<u64> = (0..runs.max(1))
                .map(|_| {
                    let t0 = now_ns();
                    delay.delay_ns(want_ns as u32);
                    now_ns().saturating_sub(t0)
                })
                .collect();
            took.sort_unstable();
            DelayFact {
                what,
                want_ns,
                median_ns: took[took.len() / 2],
                max_ns: *took.last().expect("at least one run"),
                runs: took.len(),
            }
        })
        .collect()
}

fn ns_text(ns: u64) -> String {
    if ns >= 10_000 {
        format!("{:.1} µs", ns as f64 / 1000.0)
    } else {
        format!("{ns} ns")
    }
}

fn low_hint(pin: &PinFact) -> (String, String) {
    let phys = physical_pin(pin.bcm);
    let bridge = match (phys, phys.and_then(gnd_beside)) {
        (Some(d), Some(g)) => format!("a bridge between pins {d} and {g}"),
        (Some(d), None) => format!("a bridge from pin {d} to GND"),
        _ => "a bridge to GND".into(),
    };
    match pin.key {
        "tm1637_dio_pin" | "tm1637_clk_pin" => (
            "held low while idle".to_string(),
            format!(
                "check for {bridge}, and the module's VCC (an unpowered module sinks the line)"
            ),
        ),
        _ => (
            "reads pressed while nobody presses it".to_string(),
            format!(
                "check for {bridge}: the button must connect the pin to GND only while pressed"
            ),
        ),
    }
}

/// One finding per check, in the order an owner fixes things.
pub fn diagnose(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let wants_pi = matches!(f.backend, Backend::Pi | Backend::Auto);
    // The board.
    out.push(match (&f.model, &f.rppal) {
        (Some(m), Ok(_)) => finding(Verdict::Ok, format!("board: {m} (rppal knows it)"), None),
        (Some(m), Err(e)) if m.contains("Raspberry Pi") => finding(Verdict::Problem,
            format!("board: {m}, but rppal cannot drive it ({e})"),
            Some("this banlight's rppal predates the board: update banlight, or set [panel] backend = \"sim\" to run without the panel".into()),
        ),
        (Some(m), Err(_)) => finding(
            if f.backend == Backend::Pi { Verdict::Problem } else { Verdict::Ok },
            format!("board: {m}, not a Raspberry Pi"),
            (f.backend == Backend::Pi).then(|| "backend = \"pi\" needs a Raspberry Pi: set [panel] backend = \"auto\"".into()),
        ),
        (None, _) => finding(
            if f.backend == Backend::Pi { Verdict::Problem } else { Verdict::Ok },
            "board: no device tree, not a Raspberry Pi (simulated panels only)".into(),
            (f.backend == Backend::Pi).then(|| "backend = \"pi\" needs a Raspberry Pi: set [panel] backend = \"auto\"".into()),
        ),
    });
    if let Some(why) = &f.daemon {
        out.push(finding(
            Verdict::Skipped,
            format!("pin levels not read: {why}"),
            Some("for the full check stop it first: sudo systemctl stop banlight".into()),
        ));
    }
    // The pins.
    if let Some(why) = &f.no_gpio {
        out.push(finding(
            if f.backend == Backend::Pi {
                Verdict::Problem
            } else {
                Verdict::Skipped
            },
            format!("pins not checked: {why}"),
            None,
        ));
    }
    for pin in &f.pins {
        let name = format!("{}, {}", pin_name(pin.bcm), pin.role);
        let ours = f.daemon.is_some()
            && pin
                .holder
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case("rppal"));
        match (&pin.holder, &pin.level) {
            (Some(h), _) if ours => out.push(finding(
                Verdict::Ok,
                format!("{name}: held by \"{h}\" (the running banlight)"),
                None,
            )),
            (Some(h), _) => out.push(finding(
                Verdict::Problem,
                format!("{name}: held by \"{h}\""),
                Some(busy_hint(Some(h), pin.key)),
            )),
            (None, Reading::High) => out.push(finding(
                Verdict::Ok,
                format!("{name}: no holder seen, idles high"),
                None,
            )),
            (None, Reading::Low) => {
                let (text, fix) = low_hint(pin);
                out.push(finding(
                    Verdict::Problem,
                    format!("{name}: {text}"),
                    Some(fix),
                ));
            }
            (None, Reading::NotRead(why)) => out.push(finding(
                if pin.idle == Idle::Driven && f.daemon.is_none() {
                    Verdict::Ok
                } else {
                    Verdict::Skipped
                },
                format!("{name}: no holder seen (level not read: {why})"),
                None,
            )),
        }
    }
    // Busy waits: shorter than asked breaks the protocols; longer only
    // slows the frames (a loaded machine).
    for d in &f.delays {
        let text = format!(
            "{}: asked {}, took {} median, {} at most ({} runs)",
            d.what,
            ns_text(d.want_ns),
            ns_text(d.median_ns),
            ns_text(d.max_ns),
            d.runs
        );
        out.push(if d.median_ns < d.want_ns {
            finding(Verdict::Problem, text, Some("the board's delays run short: report it with `banlight selftest --report FILE`".into()))
        } else if d.median_ns > 4 * d.want_ns {
            finding(Verdict::Ok, format!("{text}; slow, so frames take longer (a loaded machine?)"), None)
        } else {
            finding(Verdict::Ok, text, None)
        });
    }
    // May the service user power off?
    out.push(match &f.power_off {
        Ok(w) if w == "yes" => finding(
            Verdict::Ok,
            format!("power-off allowed for {}", f.checked_as),
            None,
        ),
        Ok(w) => {
            let (said, fix) = w.split_once(": ").unwrap_or((w.as_str(), ""));
            finding(
                Verdict::Problem,
                format!("power-off for {}: {said}", f.checked_as),
                Some(fix.to_string()).filter(|s| !s.is_empty()),
            )
        }
        Err(why) => finding(
            Verdict::Skipped,
            format!("power-off not checked: {why}"),
            None,
        ),
    });
    // Devices.
    for d in &f.devices {
        let name = format!("{} ({})", d.path.display(), d.why);
        out.push(match &d.access {
            Access::Yes => finding(
                Verdict::Ok,
                format!("{name}: {} may open it", f.checked_as),
                None,
            ),
            Access::Missing
                if wants_pi
                    && f.model
                        .as_deref()
                        .is_some_and(|m| m.contains("Raspberry Pi")) =>
            {
                finding(
                    Verdict::Problem,
                    format!("{name}: missing"),
                    Some(if d.why.contains("SPI") {
                        "turn SPI on: sudo raspi-config nonint do_spi 0, then reboot".into()
                    } else {
                        "the kernel has no GPIO character device: update Raspberry Pi OS".into()
                    }),
                )
            }
            Access::Missing => finding(
                Verdict::Skipped,
                format!("{name}: not on this machine"),
                None,
            ),
            Access::Denied(e) => finding(
                Verdict::Problem,
                format!("{name}: {} may not open it ({e})", f.checked_as),
                Some(format!(
                    "sudo adduser {} {}, then restart the service",
                    SERVICE_USER,
                    if d.why.contains("SPI") { "spi" } else { "gpio" }
                )),
            ),
            Access::NotChecked(why) => finding(
                Verdict::Skipped,
                format!("{name}: not checked ({why})"),
                None,
            ),
        });
    }
    out.push(match &f.free_bytes {
        Ok(b) if *b < LOW_SPACE_BYTES => finding(Verdict::Problem,
            format!("{}: only {} MiB free", f.state_dir.display(), b / (1024 * 1024)),
            Some("free some space (sudo journalctl --vacuum-size=50M, sudo apt clean): the store cannot commit on a full disk".into()),
        ),
        Ok(b) => finding(Verdict::Ok, format!("{}: {} MiB free", f.state_dir.display(), b / (1024 * 1024)), None),
        Err(e) => finding(Verdict::Skipped, format!("{}: free space unknown ({e})", f.state_dir.display()), None),
    });
    out.push(if f.clock_synced {
        finding(Verdict::Ok, "clock synchronised".into(), None)
    } else {
        finding(Verdict::Problem,
            "clock not synchronised: events are stamped with this clock, and none are pruned until it is".into(),
            Some("give the Pi network and NTP: sudo timedatectl set-ntp true (timedatectl shows the state)".into()),
        )
    });
    out
}

/// The findings as text: `ok`, `PROBLEM` or `skip`, then the fix indented.
pub fn render(findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        let word = match f.verdict {
            Verdict::Ok => "ok",
            Verdict::Problem => "PROBLEM",
            Verdict::Skipped => "skip",
        };
        s.push_str(&format!("{word:<8} {}\n", f.text));
        if let Some(fix) = &f.fix {
            s.push_str(&format!("         fix: {fix}\n"));
        }
    }
    let problems = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Problem)
        .count();
    s.push_str(&format!(
        "{problems} problem{}\n",
        if problems == 1 { "" } else { "s" }
    ));
    s
}

/// Can `user` open `path` for reading and writing? As root, asked as that
/// user (runuser, so the kernel decides with the user's real groups);
/// otherwise for this process.
fn device_access(path: &Path, as_root: bool, user: &str) -> Access {
    if !path.exists() {
        return Access::Missing;
    }
    if as_root {
        let out = std::process::Command::new("runuser")
            .args(["-u", user, "--", "test", "-r"])
            .arg(path)
            .args(["-a", "-w"])
            .arg(path)
            .output();
        return match out {
            Ok(o) if o.status.success() => Access::Yes,
            Ok(o) if o.status.code() == Some(1) => Access::Denied("permission denied".into()),
            Ok(o) => Access::NotChecked(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Access::NotChecked(format!("cannot run runuser: {e}")),
        };
    }
    match rustix::fs::access(
        path,
        rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK,
    ) {
        Ok(()) => Access::Yes,
        Err(e) => Access::Denied(e.to_string()),
    }
}

/// logind's CanPowerOff for `user` (as root through runuser), as a health word.
fn power_off_for(as_root: bool, user: &str) -> Result<String, String> {
    let mut cmd = if as_root {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", user, "--", "busctl"]);
        c
    } else {
        std::process::Command::new("busctl")
    };
    cmd.args(crate::power::CAN_POWER_OFF)
        .env_remove("NOTIFY_SOCKET");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run busctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot ask logind ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    crate::power::parse_busctl(&text)
        .map(crate::power::describe)
        .ok_or_else(|| format!("busctl said {:?}", text.trim()))
}

fn user_exists(user: &str) -> bool {
    std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The system facts (everything but the pins and the delays).
fn system_facts(
    config: &Config,
    pins: Vec<PinFact>,
    delays: Vec<DelayFact>,
    daemon: Option<String>,
    no_gpio: Option<String>,
) -> Facts {
    let as_root = rustix::process::geteuid().is_root();
    let service_user = user_exists(SERVICE_USER);
    let (checked_as, as_service) = match (as_root, service_user) {
        (true, true) => (format!("the service user {SERVICE_USER}"), true),
        (true, false) => (
            format!("root (no user {SERVICE_USER}: is the package installed?)"),
            false,
        ),
        (false, _) => (
            "this user (sudo banlight doctor checks as the service user)".to_string(),
            false,
        ),
    };
    let mut devices: Vec<DeviceFact> = Vec::new();
    let gpiomem = ["/dev/gpiomem0", "/dev/gpiomem"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/dev/gpiomem"));
    devices.push(DeviceFact {
        path: gpiomem,
        why: "GPIO registers, rppal",
        access: Access::Missing,
    });
    let chip = ["/dev/gpiochip4", "/dev/gpiochip0"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/dev/gpiochip0"));
    devices.push(DeviceFact {
        path: chip,
        why: "GPIO lines, the buttons' interrupts",
        access: Access::Missing,
    });
    if let Some(spi) = &config.panel.led_spi {
        devices.push(DeviceFact {
            path: spi.clone(),
            why: "SPI, the LEDs",
            access: Access::Missing,
        });
    }
    for d in &mut devices {
        d.access = device_access(&d.path, as_service, SERVICE_USER);
    }
    let power_off = if as_root && !service_user {
        Err(format!("no user {SERVICE_USER}"))
    } else {
        power_off_for(as_service, SERVICE_USER)
    };
    // Before the first start the state dir may not exist yet: the
    // nearest folder that does holds the file system it will be on.
    let dir = config
        .state_dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let free_bytes = rustix::fs::statvfs(&dir)
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
        .map_err(|e| e.to_string());
    Facts {
        model: crate::panel::pi::device_tree_model(),
        rppal: crate::panel::pi::board(),
        backend: config.panel.backend,
        daemon,
        no_gpio,
        pins,
        delays,
        power_off,
        checked_as,
        devices,
        state_dir: dir,
        free_bytes,
        clock_synced: crate::clock::clock_synchronised(),
    }
}

/// Everything, on this machine's GPIO (rppal) when it can be opened,
/// after asking whether a daemon runs on this config.
pub fn gather(config: &Config) -> Facts {
    gather_beside(config, crate::statelock::beside_a_daemon(config).err())
}

/// [`gather`] when the caller knows whether a daemon runs (`daemon`: why
/// the pins are not to be touched); the selftest, holding the lock, does.
pub fn gather_beside(config: &Config, daemon: Option<String>) -> Facts {
    let read = match &daemon {
        Some(_) => Err("banlight is running and drives these pins".to_string()),
        None => Ok(()),
    };
    let p = &config.panel;
    let (pins, delays, no_gpio) = match crate::panel::pi::open_gpio() {
        Ok(mut gpio) => {
            let pins = probe_pins(&mut gpio, p, read);
            let t0 = Instant::now();
            let now = move || t0.elapsed().as_nanos() as u64;
            (pins, measure_delays(&mut gpio.delay(), &now, 200), None)
        }
        Err(e) => (Vec::new(), Vec::new(), Some(format!("{e:#}"))),
    };
    system_facts(config, pins, delays, daemon, no_gpio)
}

/// `banlight doctor`: the config as the selftest takes it, the report, and
/// exit 1 when something needs fixing.
pub fn main(config: Option<&Path>) -> ExitCode {
    let config = match config {
        Some(path) => Config::load(path),
        None if Path::new(SYSTEM_CONFIG).exists() => {
            println!("using {SYSTEM_CONFIG}");
            Config::load(Path::new(SYSTEM_CONFIG))
        }
        None => {
            println!("no config file: checking the built-in defaults' pins");
            Ok(Config::defaults())
        }
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let findings = diagnose(&gather(&config));
    print!("{}", render(&findings));
    if findings.iter().any(|f| f.verdict == Verdict::Problem) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::gpio_sim::wires::SimGpio;

    /// A healthy machine's system facts around the given pins and delays.
    fn facts(pins: Vec<PinFact>, delays: Vec<DelayFact>) -> Facts {
        Facts {
            model: Some("Raspberry Pi 4 Model B Rev 1.4".into()),
            rppal: Ok("Raspberry Pi 4 B".into()),
            backend: Backend::Auto,
            daemon: None,
            no_gpio: None,
            pins,
            delays,
            power_off: Ok("yes".into()),
            checked_as: "the service user banlight".into(),
            devices: vec![DeviceFact {
                path: "/dev/gpiomem".into(),
                why: "GPIO registers, rppal",
                access: Access::Yes,
            }],
            state_dir: "/var/lib/banlight".into(),
            free_bytes: Ok(10 << 30),
            clock_synced: true,
        }
    }

    /// The Pi panel's wires with a TM1637 on the default CLK/DIO.
    fn wired() -> (SimGpio, PanelConfig) {
        let p = Config::defaults().panel;
        let sim = SimGpio::new();
        sim.attach_tm1637(p.tm1637_clk_pin as u8, p.tm1637_dio_pin as u8, true);
        (sim, p)
    }

    fn run(sim: &mut SimGpio, p: &PanelConfig, read: Result<(), String>) -> Facts {
        let pins = probe_pins(sim, p, read);
        let clock = sim.clone();
        let delays = measure_delays(&mut sim.delay(), &move || clock.now_ns(), 20);
        facts(pins, delays)
    }

    fn problems(f: &Facts) -> Vec<Finding> {
        diagnose(f)
            .into_iter()
            .filter(|x| x.verdict == Verdict::Problem)
            .collect()
    }

    fn one_problem(f: &Facts, text: &str, fix: &str) {
        let p = problems(f);
        assert_eq!(p.len(), 1, "{}", render(&diagnose(f)));
        assert!(p[0].text.contains(text), "{:?}", p[0]);
        assert!(
            p[0].fix.as_deref().unwrap_or("").contains(fix),
            "{:?}",
            p[0]
        );
    }

    #[test]
    fn a_healthy_panel_idles_high_and_its_leds_are_not_touched() {
        let (mut sim, p) = wired();
        let f = run(&mut sim, &p, Ok(()));
        let levels: Vec<_> = f.pins.iter().map(|x| (x.role, x.level.clone())).collect();
        for (role, level) in &levels[2..] {
            assert_eq!(*level, Reading::High, "{role}");
        }
        // the LED lines are banlight's own outputs: never taken, never driven
        assert_eq!(sim.level(p.blinkt_data_pin as u8), None);
        assert_eq!(sim.level(p.blinkt_clock_pin as u8), None);
        assert!(
            sim.take_edges().0.iter().all(|e| e.high),
            "nothing is driven low"
        );
        // the simulated delays are exact
        assert!(
            f.delays.iter().all(|d| d.median_ns == d.want_ns),
            "{:?}",
            f.delays
        );
        let text = render(&diagnose(&f));
        assert!(text.ends_with("0 problems\n"), "{text}");
        assert!(
            text.contains("ok       BCM 4 (pin 7), TM1637 DIO: no holder seen, idles high"),
            "{text}"
        );
    }

    #[test]
    fn a_line_held_by_gpio_shutdown_names_the_overlay() {
        let (mut sim, p) = wired();
        sim.hold_line(3, "shutdown");
        let f = run(&mut sim, &p, Ok(()));
        one_problem(
            &f,
            "BCM 3 (pin 5), POWER button: held by \"shutdown\"",
            "dtoverlay=gpio-shutdown",
        );
    }

    #[test]
    fn a_dio_bridged_to_ground_names_the_pins() {
        let (mut sim, p) = wired();
        sim.short_to_ground(4, true);
        let f = run(&mut sim, &p, Ok(()));
        one_problem(
            &f,
            "TM1637 DIO: held low while idle",
            "a bridge between pins 7 and 9",
        );
    }

    #[test]
    fn an_unpowered_module_holds_dio_low() {
        let (mut sim, p) = wired();
        sim.power_display(false);
        let f = run(&mut sim, &p, Ok(()));
        one_problem(&f, "TM1637 DIO: held low", "VCC");
    }

    #[test]
    fn a_button_wire_on_ground_reads_pressed() {
        let (mut sim, p) = wired();
        sim.short_to_ground(p.mode_button_pin as u8, true);
        let f = run(&mut sim, &p, Ok(()));
        one_problem(&f, "MODE button: reads pressed", "GND only while pressed");
    }

    #[test]
    fn beside_a_running_daemon_no_pin_is_taken() {
        let (mut sim, p) = wired();
        sim.short_to_ground(4, true);
        let f = run(&mut sim, &p, Err("banlight is running".into()));
        assert!(problems(&f).is_empty(), "{}", render(&diagnose(&f)));
        for pin in &p_pins(&p) {
            assert_eq!(sim.level(*pin), None, "BCM {pin} not taken");
        }
        let mut f = f;
        f.daemon = Some("banlight is running".into());
        let text = render(&diagnose(&f));
        assert!(
            text.contains("skip     pin levels not read: banlight is running"),
            "{text}"
        );
        assert!(text.contains("sudo systemctl stop banlight"), "{text}");
    }

    fn p_pins(p: &PanelConfig) -> Vec<u8> {
        configured_pins(p).iter().map(|x| x.2 as u8).collect()
    }

    #[test]
    fn system_faults_each_get_their_fix() {
        let (mut sim, p) = wired();
        let healthy = run(&mut sim, &p, Ok(()));
        let mut f = healthy.clone();
        f.model = Some("Raspberry Pi 6 Model B Rev 1.0".into());
        f.rppal = Err("rppal: Unknown Raspberry Pi model".into());
        one_problem(&f, "rppal cannot drive it", "backend = \"sim\"");

        let mut f = healthy.clone();
        f.power_off = Ok(crate::power::describe("challenge"));
        one_problem(
            &f,
            "power-off for the service user banlight",
            "50-banlight.rules",
        );

        let mut f = healthy.clone();
        f.devices[0].access = Access::Denied("permission denied".into());
        one_problem(&f, "/dev/gpiomem", "sudo adduser banlight gpio");

        let mut f = healthy.clone();
        f.devices[0].access = Access::Missing;
        one_problem(
            &f,
            "/dev/gpiomem (GPIO registers, rppal): missing",
            "update Raspberry Pi OS",
        );

        let mut f = healthy.clone();
        f.free_bytes = Ok(3 << 20);
        one_problem(&f, "only 3 MiB free", "journalctl --vacuum-size");

        let mut f = healthy.clone();
        f.clock_synced = false;
        one_problem(&f, "clock not synchronised", "timedatectl set-ntp true");

        let mut f = healthy.clone();
        f.delays[1].median_ns = 12_000;
        one_problem(
            &f,
            "TM1637 bit delay: asked 20.0 µs, took 12.0 µs median",
            "selftest --report",
        );

        // off a Pi nothing about the Pi is a problem, unless backend = "pi"
        let mut f = healthy;
        f.model = None;
        f.rppal = Err("rppal: Unknown Raspberry Pi model".into());
        f.no_gpio = Some("cannot open the GPIO".into());
        f.pins.clear();
        f.devices[0].access = Access::Missing;
        assert!(problems(&f).is_empty(), "{}", render(&diagnose(&f)));
        f.backend = Backend::Pi;
        assert_eq!(problems(&f).len(), 2, "{}", render(&diagnose(&f)));
    }

    /// The doctor's output on gpio-sim with every pin fault at once (what
    /// docs/install-pi.md shows).
    #[test]
    fn every_pin_fault_at_once() {
        let (mut sim, p) = wired();
        sim.hold_line(3, "shutdown");
        sim.power_display(false);
        sim.short_to_ground(p.mode_button_pin as u8, true);
        let mut f = run(&mut sim, &p, Ok(()));
        f.power_off = Ok(crate::power::describe("challenge"));
        let text = render(&diagnose(&f));
        println!("{text}");
        assert!(text.ends_with("4 problems\n"), "{text}");
    }
}
