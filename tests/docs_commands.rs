//! Every `banlight …` command line quoted in the docs parses with the real
//! CLI definition, so a renamed flag or subcommand cannot leave the docs
//! telling owners to type something that fails.

use std::path::{Path, PathBuf};

use banlight::cli::Cli;
use clap::Parser;

fn docs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("fail2ban/README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The text of every inline code span and every line of a fenced block.
fn code_of(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push((i + 1, line.to_string()));
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(code), Some(_)) = (parts.next(), parts.next()) {
            out.push((i + 1, code.to_string()));
        }
    }
    out
}

/// `banlight …` at the start of a command (after `sudo`, a `$ ` prompt or
/// `target/release/`), cut where the shell would end it; `None` for
/// anything else, and for a sentence the program prints (ends in `.`).
fn command_line(code: &str) -> Option<String> {
    let mut s = code.trim();
    for prefix in ["$ ", "sudo -u banlight ", "sudo ", "target/release/", "./"] {
        s = s.strip_prefix(prefix).unwrap_or(s);
    }
    let rest = s.strip_prefix("banlight")?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    // `\|` in a table cell is the synopsis's "one of", not a pipe.
    let s = s.replace("\\|", "/");
    let end = s
        .find(['#', '|', ';', '>', '<', '&', ')'])
        .unwrap_or(s.len());
    let command = s[..end].trim();
    (!command.ends_with('.')).then(|| command.to_string())
}

/// A synopsis made concrete: placeholders get example values, `[…]` groups
/// are kept (without brackets) and `a/b/c` alternatives become `a`.
fn concrete(synopsis: &str) -> Vec<String> {
    let example = |word: &str| -> String {
        let word = match word.starts_with('/') || word.contains('.') {
            true => word,
            false => word.split('/').next().unwrap_or(word),
        };
        match word {
            "ROUTE" | "R" => "red".into(),
            "FILE" | "PATH" => "banlight.toml".into(),
            "LEDS" | "DISPLAY" | "N" => "3".into(),
            "H" | "PI" | "ADDRESS" | "HOST" => "pi.lan".into(),
            "S" | "NAME" | "SOURCE" => "web-1".into(),
            "DUR" => "3s".into(),
            w => w.into(),
        }
    };
    synopsis
        .replace(['[', ']'], " ")
        .split_whitespace()
        .map(example)
        .collect()
}

#[test]
fn every_command_line_in_the_docs_parses_with_the_real_cli() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in docs() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, code) in code_of(&text) {
            let Some(command) = command_line(&code) else {
                continue;
            };
            let args = concrete(&command);
            checked += 1;
            // A bare `banlight hook` in prose names the command: it must
            // exist, its arguments are not the point.
            let names_a_command = |args: &[String]| {
                args.len() == 2
                    && Cli::try_parse_from([&args[0], &args[1], &"--help".to_string()])
                        .is_err_and(|e| e.kind() == clap::error::ErrorKind::DisplayHelp)
            };
            if let Err(e) = Cli::try_parse_from(&args) {
                if names_a_command(&args) {
                    continue;
                }
                failures.push(format!(
                    "{}:{line}: `{command}` ({}): {}",
                    file.display(),
                    args.join(" "),
                    e.to_string().lines().next().unwrap_or("")
                ));
            }
        }
    }
    assert!(
        checked >= 40,
        "only {checked} command lines found: the extractor broke"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_extractor_finds_commands_and_leaves_prose() {
    assert_eq!(
        command_line("sudo banlight status --json | jq .").as_deref(),
        Some("banlight status --json")
    );
    assert_eq!(command_line("banlightd"), None);
    assert_eq!(command_line("banlight selftest on the pi panel."), None);
    assert_eq!(
        concrete("banlight mode next/total/24h/ROUTE"),
        ["banlight", "mode", "next"]
    );
    assert!(Cli::try_parse_from(["banlight", "no-such-command"]).is_err());
    assert!(
        Cli::try_parse_from(["banlight", "no-such-command", "--help"])
            .is_err_and(|e| e.kind() != clap::error::ErrorKind::DisplayHelp)
    );
}
