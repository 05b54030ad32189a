//! `banlight hook`: the jail.d snippet a server owner pastes on a server, and
//! the warnings about this appliance's setup that would keep it from working.
//! Pure text: `admin.rs` gathers the config, host name and addresses.

use std::net::{IpAddr, SocketAddr};

/// Where the appliance's package keeps the server-side files.
pub const SHARE_DIR: &str = "/usr/share/banlight/fail2ban";
/// Where the snippet has the server keep the delivery script (the action's
/// default `deliver`).
pub const DELIVER_PATH: &str = "/usr/local/libexec/banlight-deliver";
/// A documentation address (RFC 5737): banning it to test harms nobody.
pub const TEST_IP: &str = "203.0.113.9";

/// The server's root-only token file for a source. Named after the source, so
/// two sources used on one server (say, `ssh-1` and `web-1`) keep two files.
pub fn token_file(source: &str) -> String {
    format!("/etc/fail2ban/banlight-{source}.token")
}

/// The server's copy of the appliance's TLS certificate(s), per source too.
pub fn cert_file(source: &str) -> String {
    format!("/etc/fail2ban/banlight-{source}.pem")
}

/// The name in the appliance's self-signed certificate (see `tls.rs`).
/// Servers put it in the URL and `--connect-to` the real address, so curl
/// verifies the certificate fully against the copy it trusts: no
/// `--insecure`, no CA, whatever address or DNS name reaches the Pi.
pub const TLS_NAME: &str = "banlight";

/// What a server needs to talk only to this appliance over TLS.
pub struct TlsTrust<'a> {
    /// `sha256//…` pins: the current key first, the rotated one during an overlap.
    pub pins: &'a [String],
    /// The matching self-signed certificates, PEM.
    pub certs_pem: &'a str,
}

pub struct HookSnippet<'a> {
    pub route: &'a str,
    pub jail: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub token: Option<&'a str>,
    pub source: Option<&'a str>,
    /// `[tls]`: https to the TLS port, the certificate trusted and pinned.
    pub tls: Option<TlsTrust<'a>>,
}

/// One numbered step of the instructions: a title and indented lines.
struct Step {
    title: String,
    lines: Vec<String>,
}

impl Step {
    fn new(title: impl Into<String>) -> Self {
        Step {
            title: title.into(),
            lines: Vec::new(),
        }
    }

    fn line(mut self, line: impl Into<String>) -> Self {
        self.lines.push(line.into());
        self
    }
}

impl HookSnippet<'_> {
    /// The host as it goes into a URL (a bare IPv6 address needs brackets).
    fn url_host(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.to_string()
        }
    }

    fn token_file(&self) -> Option<String> {
        self.token?;
        Some(token_file(self.source.unwrap_or("default")))
    }

    fn cert_file(&self) -> String {
        cert_file(self.source.unwrap_or("default"))
    }

    /// The action's parameters, in the order they are written.
    fn action_args(&self) -> Vec<String> {
        let host = match self.tls {
            Some(_) => TLS_NAME.to_string(),
            None => self.url_host(),
        };
        let mut args = vec![
            format!("host=\"{host}\""),
            format!("port=\"{}\"", self.port),
            format!("route={}", self.route),
        ];
        if let Some(file) = self.token_file() {
            args.push(format!("token_file=\"{file}\""));
        }
        if let Some(tls) = &self.tls {
            args.push("scheme=\"https\"".to_string());
            args.push(format!(
                "curl_opts=\"{}\"",
                tls_curl_opts(&self.cert_file(), tls.pins, &self.url_host(), self.port)
            ));
        }
        args
    }

    fn action_line(&self) -> String {
        format!("banlight[{}]", self.action_args().join(", "))
    }

    fn steps(&self) -> Vec<Step> {
        let jail = self.jail;
        let mut steps = vec![Step::new(format!(
            "copy this appliance's {SHARE_DIR}/ (fail2ban/ in the\n\
             banlight sources) to the server; in that folder, install the action and\n\
             the delivery script it runs:"
        ))
        .line("install -m 0644 action.d/banlight.conf /etc/fail2ban/action.d/banlight.conf")
        .line(format!("install -m 0755 banlight-deliver {DELIVER_PATH}"))];
        if let Some(tls) = &self.tls {
            let mut step = Step::new(format!(
                "store this appliance's TLS certificate{s} (public; curl trusts only\n\
                 {these} and also checks the pinned key):",
                s = if tls.pins.len() > 1 { "s" } else { "" },
                these = if tls.pins.len() > 1 {
                    "these, the current and the rotated one,"
                } else {
                    "this one"
                },
            ))
            .line(format!("cat > {} <<'EOF'", self.cert_file()));
            for l in tls.certs_pem.lines().filter(|l| !l.is_empty()) {
                step = step.line(l.to_string());
            }
            steps.push(step.line("EOF"));
        }
        if let (Some(token), Some(file)) = (self.token, self.token_file()) {
            let whose = self
                .source
                .map(|s| format!(" of source \"{s}\""))
                .unwrap_or_default();
            steps.push(
                Step::new(format!(
                    "store the token{whose} where only root can read it:"
                ))
                .line(format!(
                    "(umask 077; echo 'Authorization: Bearer {token}' > {file})"
                )),
            );
        }
        steps.push(
            Step::new(format!(
                "save the [{jail}] section below as /etc/fail2ban/jail.d/banlight-{jail}.local.\n\
                 Its action = line REPLACES the jail's actions from jail.local or other\n\
                 jail.d files: if you set one there (say %(action_mwl)s), put those lines\n\
                 here instead of %(action_)s and keep the banlight line last:"
            ))
            .line("action = %(action_mwl)s")
            .line(format!("         {}", self.action_line())),
        );
        steps.push(
            Step::new(format!(
                "apply it: restart the jail (a reload does not add an action to a\n\
                 running jail; norestored keeps the restart from resending its bans).\n\
                 If {jail} was not running yet, use fail2ban-client reload instead:"
            ))
            .line(format!(
                "fail2ban-client -t && fail2ban-client restart {jail}"
            )),
        );
        steps.push(
            Step::new("check: the first command must list banlight; the ban lights the panel")
                .line(format!("fail2ban-client get {jail} actions"))
                .line(format!("fail2ban-client set {jail} banip {TEST_IP}"))
                .line(format!("fail2ban-client set {jail} unbanip {TEST_IP}")),
        );
        steps
    }

    /// The jail's section, as the file in jail.d holds it.
    fn jail_section(&self) -> String {
        format!(
            "[{jail}]\nenabled = true\naction = %(action_)s\n         {action}\n",
            jail = self.jail,
            action = self.action_line(),
        )
    }

    /// The install steps as a script the owner runs on the server, as root,
    /// in a copy of the appliance's server-side folder: nothing to strip or
    /// retype. `ROOT=DIR` installs under DIR instead (a dry run: the config
    /// it writes still names the real paths), and then only checks the
    /// config, without touching a running fail2ban.
    pub fn script(&self) -> String {
        let jail = self.jail;
        let jail_file = format!("/etc/fail2ban/jail.d/banlight-{jail}.local");
        let mut out = format!(
            "#!/bin/sh\n\
             # Send the {jail} jail's bans to banlight route \"{route}\" on {host}:{port}.\n\
             # Run as root on the server, in a copy of this appliance's {SHARE_DIR}/\n\
             # (fail2ban/ in the banlight sources): sh ./setup-{jail}.sh\n\
             # It installs the action, its delivery script{token}, and\n\
             # {jail_file}, whose action = line REPLACES the jail's actions from\n\
             # jail.local (edit it first if you set one there, keeping banlight last).\n\
             set -eu\n\
             ROOT=\"${{ROOT:-}}\"\n\
             mkdir -p \"$ROOT/etc/fail2ban/action.d\" \"$ROOT/etc/fail2ban/jail.d\" \"$ROOT{libexec}\"\n\
             install -m 0644 action.d/banlight.conf \"$ROOT/etc/fail2ban/action.d/banlight.conf\"\n\
             install -m 0755 banlight-deliver \"$ROOT{DELIVER_PATH}\"\n",
            route = self.route,
            host = self.url_host(),
            port = self.port,
            token = if self.token.is_some() { ", the token" } else { "" },
            libexec = DELIVER_PATH.rsplit_once('/').map_or("/", |(dir, _)| dir),
        );
        if let Some(tls) = &self.tls {
            out.push_str(&format!("cat > \"$ROOT{}\" <<'EOF'\n", self.cert_file()));
            for l in tls.certs_pem.lines().filter(|l| !l.is_empty()) {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str("EOF\n");
        }
        if let (Some(token), Some(file)) = (self.token, self.token_file()) {
            out.push_str(&format!(
                "(umask 077; printf '%s\\n' 'Authorization: Bearer {token}' > \"$ROOT{file}\")\n"
            ));
        }
        out.push_str(&format!(
            "cat > \"$ROOT{jail_file}\" <<'EOF'\n{section}EOF\n\
             if [ -n \"$ROOT\" ]; then\n\
             \x20   fail2ban-client -c \"$ROOT/etc/fail2ban\" -t\n\
             \x20   exit 0\n\
             fi\n\
             fail2ban-client -t\n\
             # A reload does not add an action to a running jail: restart it\n\
             # (norestored keeps the restart from resending its bans).\n\
             if fail2ban-client status {jail} >/dev/null 2>&1; then\n\
             \x20   fail2ban-client restart {jail}\n\
             else\n\
             \x20   fail2ban-client reload\n\
             fi\n\
             fail2ban-client get {jail} actions | grep -q banlight\n\
             echo \"installed. Check: fail2ban-client set {jail} banip {TEST_IP} lights the panel;\"\n\
             echo \"then fail2ban-client set {jail} unbanip {TEST_IP}\"\n",
            section = self.jail_section(),
        ));
        out
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "# Send the {jail} jail's bans to banlight route \"{route}\" on {host}:{port}.\n\
             # On the server, as root:\n",
            jail = self.jail,
            route = self.route,
            host = self.url_host(),
            port = self.port,
        );
        for (i, step) in self.steps().iter().enumerate() {
            let mut title = step.title.lines();
            out.push_str(&format!("# {:>2}. {}\n", i + 1, title.next().unwrap_or("")));
            for more in title {
                out.push_str(&format!("#     {more}\n"));
            }
            for line in &step.lines {
                out.push_str(&format!("#       {line}\n"));
            }
        }
        out.push_str(&self.jail_section());
        out
    }
}

/// What `banlight hook` knows about how servers would reach this appliance.
pub struct Reach<'a> {
    pub listen: SocketAddr,
    /// `--host`, if given.
    pub host_given: Option<&'a str>,
    /// The host the snippet uses when `--host` was not given.
    pub host_used: &'a str,
    /// This machine's addresses, loopback excluded.
    pub addresses: &'a [IpAddr],
}

/// Warnings for the owner (printed apart from the snippet): set-ups that
/// would give a snippet that cannot work.
pub fn warnings(reach: &Reach) -> Vec<String> {
    let mut out = Vec::new();
    let listen = reach.listen;
    if listen.ip().is_loopback() {
        out.push(format!(
            "listen = \"{listen}\" accepts connections from this machine only: no server can \
             reach it. Set listen = \"0.0.0.0:{port}\" (or one of this appliance's addresses) \
             in the config and restart banlight.",
            port = listen.port(),
        ));
    }
    if reach.host_given.is_none() {
        // Only the listening address answers when listen names one (a
        // loopback one is to be changed, see above).
        let any = listen.ip().is_unspecified() || listen.ip().is_loopback();
        let usable: Vec<String> = reach
            .addresses
            .iter()
            .filter(|a| any || **a == listen.ip())
            .map(IpAddr::to_string)
            .collect();
        let known = if usable.is_empty() {
            "none found besides loopback".to_string()
        } else {
            usable.join(", ")
        };
        out.push(format!(
            "no --host given: the snippet uses \"{used}\", a name servers often cannot \
             resolve. This appliance's addresses: {known}. Run again with --host and the \
             address your servers reach it at (a VPN address, a DNS name, or one of those).",
            used = reach.host_used,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snippet(token: Option<&'static str>, source: Option<&'static str>) -> String {
        HookSnippet {
            route: "red",
            jail: "sshd",
            host: "pi.example.net",
            port: 8080,
            token,
            source,
            tls: None,
        }
        .render()
    }

    #[test]
    fn snippet_with_token() {
        let s = snippet(Some("0123456789abcdef0123"), Some("web-1"));
        assert!(
            s.contains("[sshd]\nenabled = true\naction = %(action_)s\n"),
            "{s}"
        );
        assert!(s.contains(
            "         banlight[host=\"pi.example.net\", port=\"8080\", route=red, token_file=\"/etc/fail2ban/banlight-web-1.token\"]\n"
        ), "{s}");
        assert!(s.contains(
            "echo 'Authorization: Bearer 0123456789abcdef0123' > /etc/fail2ban/banlight-web-1.token"
        ));
        // every line before the jail section is a comment
        let section_start = s.find("[sshd]\n").unwrap();
        assert!(
            s[..section_start].lines().all(|l| l.starts_with('#')),
            "{s}"
        );
    }

    #[test]
    fn token_files_are_per_source() {
        let a = snippet(Some("token-a-0123456789"), Some("ssh-1"));
        let b = snippet(Some("token-b-0123456789"), Some("web-1"));
        assert!(a.contains("/etc/fail2ban/banlight-ssh-1.token"));
        assert!(b.contains("/etc/fail2ban/banlight-web-1.token"));
        assert!(!a.contains("banlight-web-1") && !b.contains("banlight-ssh-1"));
    }

    #[test]
    fn snippet_restarts_the_jail_and_ends_with_a_check() {
        let s = snippet(None, None);
        assert!(s.contains("fail2ban-client -t && fail2ban-client restart sshd\n"));
        assert!(!s.contains("reload fail2ban") && !s.contains("&& fail2ban-client reload"));
        let check = s
            .find("fail2ban-client get sshd actions")
            .expect("check step");
        let ban = s
            .find("fail2ban-client set sshd banip 203.0.113.9")
            .unwrap();
        assert!(
            s.find("restart sshd").unwrap() < check && check < ban,
            "{s}"
        );
        // installs the delivery script the action runs
        assert!(s.contains("install -m 0755 banlight-deliver /usr/local/libexec/banlight-deliver"));
        // says how to keep an existing action = line
        assert!(s.contains("REPLACES") && s.contains("#       action = %(action_mwl)s\n"));
    }

    #[test]
    fn snippet_without_token_and_ipv6_host() {
        let s = HookSnippet {
            route: "blue",
            jail: "nginx-http-auth",
            host: "2001:db8::7",
            port: 9000,
            token: None,
            source: None,
            tls: None,
        }
        .render();
        assert!(
            s.contains("banlight[host=\"[2001:db8::7]\", port=\"9000\", route=blue]"),
            "{s}"
        );
        assert!(!s.contains("token_file=") && !s.contains("Bearer"));
        assert!(s.contains("fail2ban-client restart nginx-http-auth"));
    }

    #[test]
    fn warnings_for_loopback_and_a_missing_host() {
        let addresses: Vec<IpAddr> =
            vec!["192.168.1.23".parse().unwrap(), "fd00::23".parse().unwrap()];
        let reach = |listen: &str, host_given| Reach {
            listen: listen.parse().unwrap(),
            host_given,
            host_used: "banlight",
            addresses: &addresses,
        };
        assert!(warnings(&reach("0.0.0.0:8080", Some("pi.lan"))).is_empty());

        let w = warnings(&reach("127.0.0.1:8080", Some("pi.lan")));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("127.0.0.1:8080") && w[0].contains("0.0.0.0:8080"),
            "{w:?}"
        );

        let w = warnings(&reach("[::]:8080", None));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("\"banlight\"") && w[0].contains("192.168.1.23, fd00::23"),
            "{w:?}"
        );

        // listening on one address: only that one is offered
        let w = warnings(&reach("192.168.1.23:8080", None));
        assert!(
            w[0].contains(": 192.168.1.23.") && !w[0].contains("fd00::23"),
            "{w:?}"
        );

        let w = warnings(&Reach {
            addresses: &[],
            ..reach("127.0.0.1:8080", None)
        });
        assert_eq!(w.len(), 2);
        assert!(w[1].contains("none found"), "{w:?}");
    }
}

/// curl's pin option with every pin accepted (several during a rotation).
pub fn pinned_curl_opts(pins: &[String]) -> String {
    // No quotes around the pins: the action passes curl_opts single-quoted
    // to banlight-deliver, which splits it on blanks only; base64 pins and
    // the `;` between them contain none.
    format!("--pinnedpubkey {}", pins.join(";"))
}

/// curl options that make a server talk only to this appliance, with full
/// verification: the appliance's own certificate is the only trusted one
/// (`--cacert`), the URL names the certificate's name and `--connect-to`
/// sends it to the real address, and the key is pinned on top.
pub fn tls_curl_opts(cert_file: &str, pins: &[String], url_host: &str, port: u16) -> String {
    format!(
        "--cacert {cert_file} {} --connect-to {TLS_NAME}:{port}:{url_host}:{port}",
        pinned_curl_opts(pins)
    )
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    #[test]
    fn tls_snippet_trusts_and_pins_every_key_without_insecure() {
        let pins = vec!["sha256//AAAA".to_string(), "sha256//BBB+/=".to_string()];
        let certs = "-----BEGIN CERTIFICATE-----\nMIIB1\n-----END CERTIFICATE-----\n\
                     -----BEGIN CERTIFICATE-----\nMIIB2\n-----END CERTIFICATE-----\n";
        let s = HookSnippet {
            route: "red",
            jail: "sshd",
            host: "pi.example.net",
            port: 8443,
            token: Some("0123456789abcdef0123"),
            source: Some("web-1"),
            tls: Some(TlsTrust {
                pins: &pins,
                certs_pem: certs,
            }),
        }
        .render();
        let line = "banlight[host=\"banlight\", port=\"8443\", route=red, \
                    token_file=\"/etc/fail2ban/banlight-web-1.token\", scheme=\"https\", \
                    curl_opts=\"--cacert /etc/fail2ban/banlight-web-1.pem \
                    --pinnedpubkey sha256//AAAA;sha256//BBB+/= \
                    --connect-to banlight:8443:pi.example.net:8443\"]";
        assert!(s.contains(&format!("         {line}\n")), "{s}");
        assert_eq!(
            s.matches(line).count(),
            2,
            "also in the append example: {s}"
        );
        assert!(!s.contains("--insecure"), "{s}");
        // both certificates, in a heredoc to the per-source file
        assert!(
            s.contains("#       cat > /etc/fail2ban/banlight-web-1.pem <<'EOF'\n#       -----BEGIN CERTIFICATE-----\n#       MIIB1\n"),
            "{s}"
        );
        assert!(
            s.contains("#       MIIB2\n#       -----END CERTIFICATE-----\n#       EOF\n"),
            "{s}"
        );
        let section_start = s.find("[sshd]").unwrap();
        assert!(
            s[..section_start].lines().all(|l| l.starts_with('#')),
            "{s}"
        );
        // an IPv6 address is bracketed in --connect-to
        let v6 = tls_curl_opts("/f.pem", &pins[..1], "[2001:db8::5]", 8443);
        assert!(
            v6.ends_with("--connect-to banlight:8443:[2001:db8::5]:8443"),
            "{v6}"
        );
    }
}
