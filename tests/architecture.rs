//! docs/architecture.md maps every file in src/ to its job: a file added
//! (or renamed) without a line there fails here.

use std::path::Path;

fn files(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn every_file_in_src_is_in_the_architecture_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let mut all = Vec::new();
    files(&root.join("src"), &mut all);
    assert!(all.len() > 50, "src/ read: {} files", all.len());
    let prefix = format!("{}/", root.to_string_lossy());
    let missing: Vec<String> = all
        .iter()
        .map(|f| f.trim_start_matches(&prefix).to_string())
        .filter(|f| !page.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md does not name: {missing:?}"
    );
}

#[test]
fn the_architecture_page_names_no_file_that_is_gone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let gone: Vec<&str> = page
        .split('`')
        .filter(|s| s.starts_with("src/") && !s.contains(' '))
        .filter(|s| !root.join(s).exists())
        .collect();
    assert!(gone.is_empty(), "named but not in src/: {gone:?}");
}
