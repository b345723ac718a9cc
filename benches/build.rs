//! Hands `rustc -V` to `compare`, which names the compiler beside the machine in its report.
//! Cargo rebuilds everything, this script included, when the compiler changes.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(output) = Command::new(rustc).arg("-V").output() else {
        return;
    };
    if let (true, Ok(version)) = (output.status.success(), String::from_utf8(output.stdout)) {
        println!("cargo:rustc-env=TIERWHEEL_BENCH_RUSTC={}", version.trim());
    }
}
