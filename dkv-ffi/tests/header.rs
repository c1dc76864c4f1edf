//! Header drift: `include/dkv.h` must be exactly what cbindgen generates
//! from this crate with `cbindgen.toml`. Set `DKV_UPDATE_HEADER=1` to
//! rewrite it instead of failing.

use std::path::PathBuf;

#[test]
fn the_committed_header_matches_the_source() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = crate_dir.join("../include/dkv.h");
    if std::env::var_os("DKV_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/dkv.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    if committed != generated {
        let (old, new) = (
            String::from_utf8_lossy(&committed),
            String::from_utf8_lossy(&generated),
        );
        let first = old
            .lines()
            .zip(new.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(old.lines().count().min(new.lines().count()));
        panic!(
            "include/dkv.h is stale (first difference at line {}):\n  committed: {:?}\n  generated: {:?}\n\
             regenerate it with: DKV_UPDATE_HEADER=1 cargo test -p dkv-ffi --test header",
            first + 1,
            old.lines().nth(first),
            new.lines().nth(first)
        );
    }
}
