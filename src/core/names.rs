//! Which names are accepted for jails and sources: one rule, used by the
//! config (source names), the hook parser (`jail`, `source`) and the CLI's
//! snippet generator. Pure.

/// Jail and source names: what fail2ban allows in a jail name, bounded.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:@".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jail_and_source_names() {
        for good in [
            "sshd",
            "nginx-http-auth",
            "web-1",
            "a.b_c:d@e",
            &"x".repeat(64),
        ] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "a b", "a/b", "ä", "a;b", "a\nb", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
