//! TLS for the hook listener: the appliance's own key and self-signed
//! certificate (rcgen, in `state_dir/tls/`, 0600), served with rustls (ring
//! provider, no OpenSSL). Servers pin the key (curl `--pinnedpubkey`), so no
//! CA is involved. Rotation makes the next key first; both pins are printed
//! by `banlight hook` until the appliance switches to it after the overlap.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rcgen::{CertificateParams, KeyPair, PublicKeyData};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const KEY: &str = "key.pem";
const CERT: &str = "cert.pem";
const NEXT_KEY: &str = "next-key.pem";
const NEXT_CERT: &str = "next-cert.pem";
/// Unix ms when the next key takes over.
const NEXT_SWITCH: &str = "next-switch";
/// The pins servers should accept (public; readable by the CLI).
pub const PINS: &str = "pins";
/// The certificates servers should trust, PEM, current first (public).
pub const CERTS: &str = "certs.pem";

pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("tls")
}

/// curl's `sha256//BASE64` pin of a key: SHA-256 of its SubjectPublicKeyInfo.
pub fn pin_of_spki(spki_der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
    format!(
        "sha256//{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

fn write_private(path: &Path, data: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// A private key others can read (a restore from a backup, a hand-made
/// key, a careless chmod) is made 0600 again, or the start is refused with
/// the command that fixes it (issue 19, item 6). Returns whether it changed.
fn keep_private(path: &Path) -> Result<bool, String> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(false);
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| {
        format!(
            "the TLS key {} is readable by others (mode {mode:o}) and could not be made private ({e}): run `chmod 600 {}` as its owner",
            path.display(),
            path.display()
        )
    })?;
    tracing::warn!(key = %path.display(), "the TLS key was readable by others (mode {mode:o}): made it 0600");
    Ok(true)
}

/// A new key and self-signed certificate, written as `key_name`/`cert_name`.
fn generate(dir: &Path, key_name: &str, cert_name: &str) -> Result<(), String> {
    let key = KeyPair::generate().map_err(|e| format!("generating a TLS key: {e}"))?;
    let mut params = CertificateParams::new(vec!["banlight".to_string()])
        .map_err(|e| format!("certificate parameters: {e}"))?;
    // A subject of its own per key: servers trust the current and the
    // rotated certificate side by side, and OpenSSL finds a self-signed
    // certificate's issuer by subject name (two equal names: the wrong one).
    let pin = pin_of_spki(&key.subject_public_key_info());
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("banlight {}", &pin["sha256//".len()..][..16]),
    );
    // Validity is not what servers check (they pin the key); keep it long.
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 12, 31);
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("self-signing the certificate: {e}"))?;
    let io = |e: std::io::Error| format!("writing TLS files in {}: {e}", dir.display());
    write_private(&dir.join(key_name), &key.serialize_pem()).map_err(io)?;
    write_private(&dir.join(cert_name), &cert.pem()).map_err(io)?;
    Ok(())
}

fn pin_of_key_file(path: &Path) -> Result<String, String> {
    let pem = fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let key = KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(pin_of_spki(&key.subject_public_key_info()))
}

fn write_public(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)
        .and_then(|()| fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)))
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Rewrites the public files: the pins and the certificates servers trust,
/// the current key's first, then the next one's.
fn write_pins(dir: &Path) -> Result<Vec<String>, String> {
    let mut pins = vec![pin_of_key_file(&dir.join(KEY))?];
    let read = |name: &str| {
        fs::read_to_string(dir.join(name))
            .map_err(|e| format!("reading {}: {e}", dir.join(name).display()))
    };
    let mut certs = read(CERT)?;
    if dir.join(NEXT_KEY).exists() {
        pins.push(pin_of_key_file(&dir.join(NEXT_KEY))?);
        certs.push_str(&read(NEXT_CERT)?);
    }
    write_public(&dir.join(CERTS), &certs)?;
    write_public(&dir.join(PINS), &(pins.join("\n") + "\n"))?;
    Ok(pins)
}

/// The certificates `banlight hook` prints (current first), PEM.
pub fn read_certs(state_dir: &Path) -> Result<String, String> {
    let path = dir(state_dir).join(CERTS);
    fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {} ({e}): start the daemon with [tls] once, and run this as root or the banlight user",
            path.display()
        )
    })
}

/// The pins `banlight hook` prints (current first), read from `state_dir`.
pub fn read_pins(state_dir: &Path) -> Result<Vec<String>, String> {
    let path = dir(state_dir).join(PINS);
    let text = fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {} ({e}): start the daemon with [tls] once, and run this as root or the banlight user",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

fn server_config(dir: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = CertificateDer::pem_file_iter(dir.join(CERT))
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading {}: {e}", dir.join(CERT).display()))?;
    let key = PrivateKeyDer::from_pem_file(dir.join(KEY))
        .map_err(|e| format!("reading {}: {e}", dir.join(KEY).display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS key/certificate in {}: {e}", dir.display()))?;
    Ok(Arc::new(config))
}

/// Moves the next key into place when its time has come.
fn promote_if_due(dir: &Path, now_ms: u64) -> Result<bool, String> {
    let Ok(at) = fs::read_to_string(dir.join(NEXT_SWITCH)) else {
        return Ok(false);
    };
    let at: u64 = at.trim().parse().unwrap_or(0);
    if now_ms < at {
        return Ok(false);
    }
    let io = |e: std::io::Error| format!("switching to the next TLS key in {}: {e}", dir.display());
    fs::rename(dir.join(NEXT_CERT), dir.join(CERT)).map_err(io)?;
    fs::rename(dir.join(NEXT_KEY), dir.join(KEY)).map_err(io)?;
    fs::remove_file(dir.join(NEXT_SWITCH)).map_err(io)?;
    write_pins(dir)?;
    Ok(true)
}

/// The daemon's TLS state: the acceptor for the current key, and when a
/// rotated key takes over.
pub struct TlsState {
    dir: PathBuf,
    inner: Mutex<(tokio_rustls::TlsAcceptor, Option<u64>)>,
}

fn switch_time(dir: &Path) -> Option<u64> {
    fs::read_to_string(dir.join(NEXT_SWITCH))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

impl TlsState {
    /// Loads the key and certificate, making them on first start.
    pub fn open(state_dir: &Path, now_ms: u64) -> Result<TlsState, String> {
        let dir = dir(state_dir);
        fs::create_dir_all(&dir)
            .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        if !dir.join(KEY).exists() || !dir.join(CERT).exists() {
            generate(&dir, KEY, CERT)?;
            tracing::info!(dir = %dir.display(), "made a new TLS key and self-signed certificate");
        }
        promote_if_due(&dir, now_ms)?;
        for key in [KEY, NEXT_KEY] {
            keep_private(&dir.join(key))?;
        }
        let pins = write_pins(&dir)?;
        tracing::info!(pin = %pins[0], "TLS key");
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&dir)?);
        Ok(TlsState {
            inner: Mutex::new((acceptor, switch_time(&dir))),
            dir,
        })
    }

    /// The acceptor for a new connection (switching keys when due).
    pub fn acceptor(&self, now_ms: u64) -> tokio_rustls::TlsAcceptor {
        let mut inner = self.inner.lock().expect("tls lock");
        if inner.1.is_some_and(|at| now_ms >= at) {
            match promote_if_due(&self.dir, now_ms).and_then(|_| server_config(&self.dir)) {
                Ok(config) => {
                    tracing::info!("switched to the rotated TLS key");
                    *inner = (tokio_rustls::TlsAcceptor::from(config), None);
                }
                Err(e) => {
                    tracing::error!("TLS key switch failed, the old key stays: {e}");
                    inner.1 = None;
                }
            }
        }
        inner.0.clone()
    }

    /// Makes the next key; it takes over at `now + overlap` (at once with
    /// `overlap` 0). Returns the pins to accept meanwhile and the switch time.
    pub fn rotate(&self, now_ms: u64, overlap_ms: u64) -> Result<(Vec<String>, u64), String> {
        let mut inner = self.inner.lock().expect("tls lock");
        generate(&self.dir, NEXT_KEY, NEXT_CERT)?;
        let at = now_ms.saturating_add(overlap_ms);
        write_private(&self.dir.join(NEXT_SWITCH), &at.to_string())
            .map_err(|e| format!("writing {}: {e}", self.dir.join(NEXT_SWITCH).display()))?;
        let pins = write_pins(&self.dir)?;
        inner.1 = Some(at);
        drop(inner);
        if overlap_ms == 0 {
            self.acceptor(now_ms);
        }
        Ok((pins, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_makes_private_files_and_a_stable_pin() {
        let dir = tempfile::tempdir().unwrap();
        let _ = TlsState::open(dir.path(), 0).unwrap();
        let tls = super::dir(dir.path());
        for f in [KEY, CERT] {
            let mode = fs::metadata(tls.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        let pins = read_pins(dir.path()).unwrap();
        assert_eq!(pins.len(), 1);
        assert!(
            pins[0].starts_with("sha256//") && pins[0].len() == 8 + 44,
            "{pins:?}"
        );
        let _ = TlsState::open(dir.path(), 0).unwrap();
        assert_eq!(
            read_pins(dir.path()).unwrap(),
            pins,
            "the key is kept across restarts"
        );
    }

    #[test]
    fn a_key_readable_by_others_is_made_private_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let _ = TlsState::open(dir.path(), 0).unwrap();
        let key = super::dir(dir.path()).join(KEY);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let _ = TlsState::open(dir.path(), 0).unwrap();
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(keep_private(&key), Ok(false), "already private");
    }

    #[test]
    fn rotation_accepts_both_pins_until_the_switch() {
        let dir = tempfile::tempdir().unwrap();
        let state = TlsState::open(dir.path(), 1000).unwrap();
        let old = read_pins(dir.path()).unwrap();
        let (pins, at) = state.rotate(1000, 5000).unwrap();
        assert_eq!(at, 6000);
        assert_eq!(pins.len(), 2);
        assert_eq!(pins[0], old[0], "the current key first");
        assert_ne!(pins[1], old[0]);
        assert_eq!(read_pins(dir.path()).unwrap(), pins);
        state.acceptor(5999);
        assert_eq!(read_pins(dir.path()).unwrap().len(), 2, "not yet");
        state.acceptor(6000);
        assert_eq!(read_pins(dir.path()).unwrap(), vec![pins[1].clone()]);
        let mode = fs::metadata(super::dir(dir.path()).join(KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // a restart after the switch time also switches
        let (pins, _) = state.rotate(7000, 100).unwrap();
        drop(state);
        let _ = TlsState::open(dir.path(), 8000).unwrap();
        assert_eq!(read_pins(dir.path()).unwrap(), vec![pins[1].clone()]);
    }

    #[test]
    fn pins_are_curl_format() {
        // SHA-256 of empty input, base64
        assert_eq!(
            pin_of_spki(b""),
            "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
