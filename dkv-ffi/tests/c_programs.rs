//! The C and C++ programs of this repository, compiled with the system
//! compilers against the `libdkv.so`/`libdkv.a` cargo built for this test
//! run, and run: the C API tests (`tests/c/`), the C++ wrapper test
//! (`tests/cpp/`, `g++ -std=c++17 -Wall -Wextra -Werror`), the examples,
//! the README program through pkg-config and statically, and the test
//! programs once more under valgrind (zero errors, zero definite or
//! indirect leaks).
//!
//! The library comes from cargo: libdkv is a C library (a cdylib and a
//! staticlib, no rlib), so building this test does not build it; the test
//! runs `cargo build -p dkv-ffi` of its own profile first, which puts both
//! in `target/<profile>` beside this test's `deps` directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Builds libdkv with this test's profile, once per test run.
fn build_libdkv(profile_dir: &Path) {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "-p", "dkv-ffi"])
            .current_dir(repo());
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        match cargo.output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
            Err(e) => Err(format!("cannot run cargo: {e}")),
        }
    });
    if let Err(e) = built {
        panic!("cargo build -p dkv-ffi failed:\n{e}");
    }
}

/// The directory holding `libdkv.so` and `libdkv.a` of this build.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    build_libdkv(deps.parent().unwrap_or(&deps));
    for dir in [
        deps.clone(),
        deps.parent().map(Path::to_path_buf).unwrap_or_default(),
    ] {
        if dir.join("libdkv.so").exists() && dir.join("libdkv.a").exists() {
            return dir;
        }
    }
    panic!(
        "libdkv.so/libdkv.a not found next to {} (run `cargo build -p dkv-ffi`)",
        exe.display()
    );
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dkv-c-programs");
    std::fs::create_dir_all(&dir).expect("create the output dir");
    dir
}

#[derive(Clone, Copy)]
enum Lang {
    C,
    Cpp,
}

/// Compiles `source` (relative to the repository) into `name`, linked to
/// the shared library with an rpath. Panics with the compiler's output.
fn compile(lang: Lang, source: &str, name: &str) -> PathBuf {
    let root = repo();
    let lib = lib_dir();
    let out = out_dir().join(name);
    let (compiler, std) = match lang {
        Lang::C => (
            std::env::var("CC").unwrap_or_else(|_| "cc".into()),
            "-std=c11",
        ),
        Lang::Cpp => (
            std::env::var("CXX").unwrap_or_else(|_| "g++".into()),
            "-std=c++17",
        ),
    };
    let mut cmd = Command::new(&compiler);
    cmd.args([std, "-Wall", "-Wextra", "-Werror", "-g"])
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("bindings/cpp"))
        .arg("-I")
        .arg(root.join("dkv-ffi/tests/c"))
        .arg(root.join(source))
        .arg("-o")
        .arg(&out)
        .arg("-L")
        .arg(&lib)
        .arg("-ldkv")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-pthread");
    check_output(&format!("{compiler} {source}"), cmd.output());
    out
}

fn check_output(what: &str, output: std::io::Result<Output>) -> Output {
    let output = output.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    println!("{what}: ok\n{stdout}");
    output
}

/// Runs `bin` with a fresh scratch directory as its argument.
fn run(bin: &Path, env: &[(&str, &str)]) -> Output {
    let scratch = tempfile::tempdir().expect("scratch dir");
    let mut cmd = Command::new(bin);
    cmd.arg(scratch.path())
        .current_dir(scratch.path())
        .env_remove("LD_LIBRARY_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    check_output(&bin.display().to_string(), cmd.output())
}

#[test]
fn c_api_every_function_and_error_path() {
    let bin = compile(Lang::C, "dkv-ffi/tests/c/test_api.c", "test_api");
    let out = run(&bin, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("checks passed"));
}

#[test]
fn c_three_node_cluster_survives_a_stop() {
    let bin = compile(Lang::C, "dkv-ffi/tests/c/test_cluster.c", "test_cluster");
    run(&bin, &[]);
}

#[test]
fn cpp_wrapper_single_node_and_cluster() {
    let bin = compile(
        Lang::Cpp,
        "dkv-ffi/tests/cpp/test_wrapper.cpp",
        "test_wrapper",
    );
    run(&bin, &[]);
}

#[test]
fn examples_start_a_cluster_write_stop_one_and_read() {
    for (lang, source, name, wrote) in [
        (Lang::C, "examples/c/cluster.c", "example_c", "hello from C"),
        (
            Lang::Cpp,
            "examples/cpp/cluster.cpp",
            "example_cpp",
            "hello from C++",
        ),
    ] {
        let bin = compile(lang, source, name);
        let out = run(&bin, &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!(
                "get greeting at QUORUM with node 1 down = \"{wrote}\""
            )),
            "{text}"
        );
        assert!(
            text.contains("at ALL with node 1 down: UNAVAILABLE"),
            "{text}"
        );
    }
}

/// A prefix laid out as `make install-lib` lays it out (libraries,
/// headers, `dkv.pc`, `DkvConfig.cmake`), from this build's files.
fn install_prefix() -> tempfile::TempDir {
    let root = repo();
    let lib = lib_dir();
    let prefix = tempfile::tempdir().expect("prefix");
    let p = prefix.path();
    for dir in ["lib/pkgconfig", "lib/cmake/Dkv", "include"] {
        std::fs::create_dir_all(p.join(dir)).expect("prefix dirs");
    }
    for (from, to) in [
        (lib.join("libdkv.so"), "lib/libdkv.so"),
        (lib.join("libdkv.a"), "lib/libdkv.a"),
        (root.join("include/dkv.h"), "include/dkv.h"),
        (root.join("bindings/cpp/dkv.hpp"), "include/dkv.hpp"),
        (
            root.join("dkv-ffi/cmake/DkvConfig.cmake"),
            "lib/cmake/Dkv/DkvConfig.cmake",
        ),
    ] {
        std::fs::copy(&from, p.join(to)).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
    let template = std::fs::read_to_string(root.join("dkv-ffi/dkv.pc.in")).expect("dkv.pc.in");
    let pc = template
        .replace("@PREFIX@", &p.display().to_string())
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    std::fs::write(p.join("lib/pkgconfig/dkv.pc"), pc).expect("write dkv.pc");
    prefix
}

/// The install story: the README program built through pkg-config from an
/// installed prefix, and linked statically against `libdkv.a`.
#[test]
fn hello_builds_with_pkg_config_and_statically() {
    let root = repo();
    let lib = lib_dir();
    let prefix = install_prefix();
    let p = prefix.path();
    let flags = check_output(
        "pkg-config --cflags --libs dkv",
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "dkv"])
            .env("PKG_CONFIG_PATH", p.join("lib/pkgconfig"))
            .output(),
    );
    let flags = String::from_utf8_lossy(&flags.stdout).to_string();
    assert!(flags.contains("-ldkv"), "{flags}");
    let dynamic = out_dir().join("hello_pkg_config");
    let mut cmd = Command::new("cc");
    cmd.arg(root.join("examples/c/hello.c"))
        .arg("-o")
        .arg(&dynamic)
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", p.join("lib").display()));
    check_output("cc hello.c $(pkg-config --cflags --libs dkv)", cmd.output());
    let out = run(&dynamic, &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello = world\n");

    let fixed = out_dir().join("hello_static");
    let mut cmd = Command::new("cc");
    cmd.arg("-I")
        .arg(root.join("include"))
        .arg(root.join("examples/c/hello.c"))
        .arg(lib.join("libdkv.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&fixed);
    check_output("cc hello.c libdkv.a", cmd.output());
    let out = run(&fixed, &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello = world\n");
}

/// The CMake package config: `find_package(Dkv CONFIG)` from an installed
/// prefix gives `Dkv::dkv` and `Dkv::dkv_static`, for C and for C++ with
/// dkv.hpp. Skipped where cmake is not installed.
#[test]
fn cmake_finds_the_installed_library() {
    if Command::new("cmake").arg("--version").output().is_err() {
        eprintln!("SKIPPED: cmake is not installed");
        return;
    }
    let root = repo();
    let prefix = install_prefix();
    let project = tempfile::tempdir().expect("project dir");
    let src = project.path().join("src");
    std::fs::create_dir_all(&src).expect("src dir");
    std::fs::copy(root.join("examples/c/hello.c"), src.join("hello.c")).expect("hello.c");
    std::fs::write(
        src.join("hello.cpp"),
        "#include <dkv.hpp>\n#include <iostream>\n\
         int main() { std::cout << \"libdkv \" << dkv::version() << \"\\n\"; }\n",
    )
    .expect("hello.cpp");
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.16)\nproject(uses_dkv C CXX)\n\
         set(CMAKE_CXX_STANDARD 17)\nfind_package(Dkv CONFIG REQUIRED)\n\
         add_executable(hello hello.c)\ntarget_link_libraries(hello PRIVATE Dkv::dkv)\n\
         add_executable(hello_static hello.c)\ntarget_link_libraries(hello_static PRIVATE Dkv::dkv_static)\n\
         add_executable(hello_cpp hello.cpp)\ntarget_link_libraries(hello_cpp PRIVATE Dkv::dkv)\n",
    )
    .expect("CMakeLists.txt");
    let build = project.path().join("build");
    check_output(
        "cmake configure",
        Command::new("cmake")
            .arg("-S")
            .arg(&src)
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.path().display()))
            .output(),
    );
    check_output(
        "cmake --build",
        Command::new("cmake").arg("--build").arg(&build).output(),
    );
    for name in ["hello", "hello_static"] {
        let out = run(&build.join(name), &[]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello = world\n");
    }
    let out = run(&build.join("hello_cpp"), &[]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("libdkv "));
}

/// dkv.h compiles alone as C99 and C++11 with -pedantic, and dkv.hpp with
/// extra warnings (-Wconversion, -Wshadow) as errors.
#[test]
fn headers_compile_standalone_and_pedantic() {
    let root = repo();
    let dir = tempfile::tempdir().expect("dir");
    let main = dir.path().join("main.c");
    std::fs::write(&main, "#include \"dkv.h\"\nint main(void) { return dkv_abi_version() == DKV_ABI_VERSION ? 0 : 1; }\n")
        .expect("main.c");
    let cpp = dir.path().join("main.cpp");
    std::fs::write(&cpp, "#include \"dkv.hpp\"\nint main() { return 0; }\n").expect("main.cpp");
    for (compiler, std, file, extra) in [
        ("cc", "-std=c99", &main, &[][..]),
        ("g++", "-std=c++11", &main, &["-x", "c++"][..]),
        (
            "g++",
            "-std=c++17",
            &cpp,
            &["-Wconversion", "-Wshadow", "-Wold-style-cast"][..],
        ),
    ] {
        let output = Command::new(compiler)
            .args([
                std,
                "-pedantic",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
            ])
            .args(extra)
            .arg("-I")
            .arg(root.join("include"))
            .arg("-I")
            .arg(root.join("bindings/cpp"))
            .arg(file)
            .output();
        check_output(&format!("{compiler} {std} {}", file.display()), output);
    }
}

/// The test programs once more under valgrind: any memory error or any
/// definitely/indirectly lost block fails. ("Still reachable" blocks are
/// Rust's per-thread state left at exit, not leaks.)
#[test]
fn c_and_cpp_tests_are_valgrind_clean() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("SKIPPED: valgrind is not installed");
        return;
    }
    let programs = [
        compile(Lang::C, "dkv-ffi/tests/c/test_api.c", "vg_test_api"),
        compile(Lang::C, "dkv-ffi/tests/c/test_cluster.c", "vg_test_cluster"),
        compile(
            Lang::Cpp,
            "dkv-ffi/tests/cpp/test_wrapper.cpp",
            "vg_test_wrapper",
        ),
    ];
    for bin in programs {
        let scratch = tempfile::tempdir().expect("scratch dir");
        let output = Command::new("valgrind")
            .args([
                "--error-exitcode=99",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
                "--show-leak-kinds=definite,indirect",
                "--fair-sched=yes",
            ])
            .arg(&bin)
            .arg(scratch.path())
            .current_dir(scratch.path())
            .env_remove("LD_LIBRARY_PATH")
            .env("DKV_TEST_SLOW", "1")
            .output();
        let output = check_output(&format!("valgrind {}", bin.display()), output);
        let log = String::from_utf8_lossy(&output.stderr);
        let summary: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("ERROR SUMMARY")
                    || l.contains("definitely lost")
                    || l.contains("indirectly lost")
            })
            .collect();
        println!("{}", summary.join("\n"));
        assert!(
            log.contains("ERROR SUMMARY: 0 errors"),
            "valgrind found errors:\n{log}"
        );
    }
}
