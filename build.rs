//! Tells the binary which target it was built for (`banlight_build_info`),
//! and writes the man pages (banlight.1 and one per subcommand) into
//! `$OUT_DIR/man` from the CLI definition itself, with clap_mangen.
//! cross/build puts them into the .deb.

use std::path::PathBuf;

/// The real command-line definition, compiled into this build script too.
#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

/// What cli.rs needs from the crate: only the type's name and that it parses
/// from a string. The man pages show an argument's name, help and default,
/// never a parsed value, so the build script does not need the real parser.
mod config {
    #[derive(Clone, Debug)]
    pub struct Millis;

    impl std::str::FromStr for Millis {
        type Err = String;
        fn from_str(_: &str) -> Result<Self, String> {
            Ok(Millis)
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/cli.rs");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=BANLIGHT_TARGET={target}");

    let man = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("man");
    std::fs::create_dir_all(&man).expect("create $OUT_DIR/man");
    let cmd = <cli::Cli as clap::CommandFactory>::command();
    clap_mangen::generate_to(cmd, &man).expect("write the man pages");
}
