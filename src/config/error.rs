//! Where a config error is: the file, the line and the dotted key, found
//! from the spans of the parsed document (`toml_edit`), not by scanning
//! the text.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item, Table};

/// A config that could not be used: where, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Makes `ConfigError`s for one file: `at` a byte offset that serde or a
/// check reported, or at a `key` of a table, which may be absent from the
/// file (a value can clash with a default the file never mentions).
pub(super) struct Locator<'a> {
    file: PathBuf,
    from_file: bool,
    text: &'a str,
    /// `None` when the text is not valid TOML: then only the line is known.
    doc: Option<ImDocument<&'a str>>,
}

impl<'a> Locator<'a> {
    pub fn new(path: Option<&Path>, text: &'a str) -> Self {
        Locator {
            file: path.map_or_else(|| PathBuf::from("(defaults)"), Path::to_path_buf),
            from_file: path.is_some(),
            text,
            doc: ImDocument::parse(text).ok(),
        }
    }

    /// The file, `None` for the built-in defaults.
    pub fn file(&self) -> Option<&Path> {
        self.from_file.then_some(self.file.as_path())
    }

    /// The error `message` at byte `offset`: its line, and the key whose
    /// name or value holds it (else the table whose header is above it).
    pub fn at(&self, offset: usize, message: String) -> ConfigError {
        let key = self
            .doc
            .as_ref()
            .and_then(|d| key_at(d.as_table(), "", offset));
        ConfigError {
            file: self.file.clone(),
            line: self.line_of(offset),
            key,
            message,
        }
    }

    /// The error `message` about `key` in `[table]` (`""`: the top level),
    /// on the line that sets it, if the file sets it.
    pub fn key(&self, table: &str, key: &str, message: String) -> ConfigError {
        let named = if table.is_empty() {
            key.to_string()
        } else {
            format!("{table}.{key}")
        };
        self.about(table, key, &named, message)
    }

    /// Like `key`, but names `named` (a related key the file may lack).
    pub fn about(&self, table: &str, key: &str, named: &str, message: String) -> ConfigError {
        let span = self.doc.as_ref().and_then(|d| {
            let t = if table.is_empty() {
                d.as_table()
            } else {
                d.as_table().get(table)?.as_table()?
            };
            t.key(key)?.span()
        });
        ConfigError {
            file: self.file.clone(),
            line: span.and_then(|s| self.line_of(s.start)),
            key: Some(named.to_string()),
            message,
        }
    }

    /// 1-based; an offset past the last newline belongs to the last line.
    fn line_of(&self, offset: usize) -> Option<usize> {
        if self.text.is_empty() {
            return None;
        }
        let offset = offset.min(self.text.len());
        let lines = self.text.lines().count().max(1);
        Some((self.text[..offset].matches('\n').count() + 1).min(lines))
    }
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// The dotted key (`panel.led_brightness`, `route[1].color`) at `offset`.
/// An inline table (`fri = { from = "23:00" }`) is named as a whole.
fn key_at(table: &Table, prefix: &str, offset: usize) -> Option<String> {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    // The nearest table header above the offset, if no key holds it.
    let mut above: Option<(usize, String)> = None;
    let mut consider = |span: Option<Range<usize>>, name: String| {
        if let Some(s) = span {
            if s.start <= offset && above.as_ref().is_none_or(|(at, _)| s.start >= *at) {
                above = Some((s.start, name));
            }
        }
    };
    for (k, item) in table.iter() {
        let name = join(k);
        match item {
            Item::Table(t) => {
                if let Some(found) = key_at(t, &name, offset) {
                    return Some(found);
                }
                consider(t.span(), name);
            }
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let name = format!("{name}[{i}]");
                    if let Some(found) = key_at(t, &name, offset) {
                        return Some(found);
                    }
                    consider(t.span(), name);
                }
            }
            Item::Value(v) => {
                let key_span = table.key(k).and_then(|key| key.span());
                if contains(key_span, offset) || contains(v.span(), offset) {
                    return Some(name);
                }
            }
            Item::None => {}
        }
    }
    above.map(|(_, name)| name)
}

/// serde's "unknown field `x`, expected one of `a`, `b`" with the nearest
/// expected key named, when one is near (a typo, a missing prefix).
pub(super) fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    // Split on backticks, the parts alternate inside/outside: the given key
    // first, then the expected ones.
    let given = rest.split('`').next().unwrap_or("");
    let expected = rest.split('`').skip(2).step_by(2);
    let best = expected
        .map(|k| (strsim::levenshtein(given, k), k))
        .filter(|(d, k)| *d <= 2 || (given.len() >= 4 && (k.contains(given) || given.contains(k))))
        .min();
    match best {
        Some((_, k)) => format!("{message}: did you mean `{k}`?"),
        None => message.to_string(),
    }
}
