//! Tells the binary which target it was built for (`banlight_build_info`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=BANLIGHT_TARGET={target}");
}
