//! Running a simulation over many seeds, or replaying one.

use std::fmt::Debug;

/// Runs `run` for the seed in `DKV_SEED` only, or for seeds 1..=`DKV_SIM_SEEDS`
/// (default `default_seeds`), and returns what each passing seed reported.
/// Panics when a seed fails, naming every failing seed with the command
/// that replays it (`cargo test --test <test>`).
pub fn run_seeds<T: Debug>(
    test: &str,
    default_seeds: u64,
    run: impl Fn(u64) -> Result<T, String>,
) -> Vec<T> {
    if let Some(seed) = std::env::var("DKV_SEED").ok().and_then(|s| s.parse().ok()) {
        return match run(seed) {
            Ok(summary) => {
                println!("seed {seed}: {summary:?}");
                vec![summary]
            }
            Err(problem) => panic!("seed {seed}: {problem}"),
        };
    }
    let seeds: u64 = std::env::var("DKV_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_seeds);
    let mut passed = Vec::new();
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        match run(seed) {
            Ok(summary) => passed.push(summary),
            Err(problem) => failures.push(format!(
                "seed {seed}: {problem} (replay: DKV_SEED={seed} cargo test --test {test})"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    passed
}
