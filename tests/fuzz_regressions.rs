//! Every input kept under fuzz/regressions/ (crashes the fuzzer found, and
//! hand-written edge cases) runs through the same checks as the fuzz target.

#[test]
fn kept_fuzz_inputs_still_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/request");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions/request exists") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| banlight::request::fuzz_one(&data));
        assert!(result.is_ok(), "{} fails again", path.display());
        n += 1;
    }
    assert!(n >= 5, "only {n} kept inputs");
}
