//! `banlight hook`: the jail.d snippet a server owner pastes on a server.

/// Where the snippet tells the server to keep the token (root-only).
pub const TOKEN_FILE: &str = "/etc/fail2ban/banlight.token";

pub struct HookSnippet<'a> {
    pub route: &'a str,
    pub jail: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub token: Option<&'a str>,
    pub source: Option<&'a str>,
}

impl HookSnippet<'_> {
    pub fn render(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host) // a bare IPv6 address in a URL needs brackets
        } else {
            self.host.to_string()
        };
        let mut out = String::new();
        out.push_str(&format!(
            "# Send the {jail} jail's bans to banlight route \"{route}\" on {host}:{port}.\n\
             # On the server, as root:\n\
             #  1. copy the action: /usr/share/banlight/fail2ban/action.d/banlight.conf (on the\n\
             #     appliance; fail2ban/action.d/ in the source) to /etc/fail2ban/action.d/\n",
            jail = self.jail,
            route = self.route,
            port = self.port,
        ));
        let token_arg = match self.token {
            Some(token) => {
                out.push_str(&format!(
                    "#  2. store the token{} where only root can read it:\n\
                     #       (umask 077; echo 'Authorization: Bearer {token}' > {TOKEN_FILE})\n",
                    self.source
                        .map(|s| format!(" of source \"{s}\""))
                        .unwrap_or_default(),
                ));
                format!(", token_file=\"{TOKEN_FILE}\"")
            }
            None => {
                out.push_str("#  2. (this appliance needs no token)\n");
                String::new()
            }
        };
        out.push_str(&format!(
            "#  3. save what follows as /etc/fail2ban/jail.d/banlight-{jail}.local, then:\n\
             #       fail2ban-client -t && systemctl reload fail2ban\n\
             #  4. test: fail2ban-client set {jail} banip 203.0.113.9\n\
             [{jail}]\n\
             enabled = true\n\
             action = %(action_)s\n         banlight[host=\"{host}\", port=\"{port}\", route={route}{token_arg}]\n",
            jail = self.jail,
            route = self.route,
            port = self.port,
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_with_token() {
        let s = HookSnippet {
            route: "red",
            jail: "sshd",
            host: "pi.example.net",
            port: 8080,
            token: Some("0123456789abcdef0123"),
            source: Some("web-1"),
        }
        .render();
        assert!(
            s.contains("[sshd]\nenabled = true\naction = %(action_)s\n"),
            "{s}"
        );
        assert!(s.contains(
            "banlight[host=\"pi.example.net\", port=\"8080\", route=red, token_file=\"/etc/fail2ban/banlight.token\"]"
        ));
        assert!(s.contains(
            "echo 'Authorization: Bearer 0123456789abcdef0123' > /etc/fail2ban/banlight.token"
        ));
        // every line that is not the jail section is a comment
        let section_start = s.find("[sshd]").unwrap();
        assert!(s[..section_start].lines().all(|l| l.starts_with('#')));
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
        }
        .render();
        assert!(
            s.contains("banlight[host=\"[2001:db8::7]\", port=\"9000\", route=blue]"),
            "{s}"
        );
        assert!(!s.contains("token_file="));
    }
}

/// curl options that make a server talk only to this appliance's key:
/// `--pinnedpubkey` with every pin accepted (several during a key rotation).
/// `--insecure` only switches off the CA and host-name check, which a
/// self-signed certificate cannot pass; curl checks the pin regardless
/// (CURLOPT_PINNEDPUBLICKEY is independent of CURLOPT_SSL_VERIFYPEER).
pub fn pinned_curl_opts(pins: &[String]) -> String {
    format!("--insecure --pinnedpubkey '{}'", pins.join(";"))
}

/// Turns a plain snippet (rendered with the TLS port) into one for the TLS
/// listener: `scheme = https` and the pinned key on the action line.
pub fn with_tls(snippet: &str, pins: &[String]) -> String {
    let mut out = String::new();
    for line in snippet.lines() {
        if line.trim_start().starts_with("banlight[") && line.ends_with(']') {
            out.push_str(&format!(
                "{}, scheme=\"https\", curl_opts=\"{}\"]\n",
                &line[..line.len() - 1],
                pinned_curl_opts(pins)
            ));
        } else if line.starts_with('[') && !out.contains("# TLS:") {
            out.push_str(&format!(
                "# TLS: curl accepts only this appliance's key ({}); no CA is involved.\n",
                if pins.len() > 1 {
                    "current and rotated key, until the switch"
                } else {
                    "pinned"
                }
            ));
            out.push_str(line);
            out.push('\n');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    #[test]
    fn tls_snippet_pins_every_key() {
        let plain = HookSnippet {
            route: "red",
            jail: "sshd",
            host: "pi.example.net",
            port: 8443,
            token: Some("0123456789abcdef0123"),
            source: None,
        }
        .render();
        let pins = vec!["sha256//AAAA".to_string(), "sha256//BBB+/=".to_string()];
        let s = with_tls(&plain, &pins);
        assert!(s.contains(
            "banlight[host=\"pi.example.net\", port=\"8443\", route=red, token_file=\"/etc/fail2ban/banlight.token\", scheme=\"https\", curl_opts=\"--insecure --pinnedpubkey 'sha256//AAAA;sha256//BBB+/='\"]\n"
        ), "{s}");
        let section_start = s.find("[sshd]").unwrap();
        assert!(
            s[..section_start].lines().all(|l| l.starts_with('#')),
            "{s}"
        );
        assert!(s.contains("until the switch"));
    }
}
