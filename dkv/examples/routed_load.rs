//! Sequential quorum SETs and GETs through the Rust client, with
//! token-aware routing on or off; prints requests per second. Used by
//! `benches/routing_compare.sh`, which reads the peer messages the cluster
//! spent from `INFO cluster`.
//!
//!     cargo run --release --example routed_load -- <on|off> <requests> <addr>...

use std::net::SocketAddr;
use std::time::Instant;

use dkv::client::{Client, ClientOptions};
use dkv::node::Consistency;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(count)) = (args.first(), args.get(1)) else {
        eprintln!("usage: routed_load <on|off> <requests> <addr>...");
        std::process::exit(2);
    };
    let count: usize = count.parse().unwrap_or(10_000);
    let addrs: Vec<SocketAddr> = args[2..].iter().filter_map(|a| a.parse().ok()).collect();
    let options = ClientOptions {
        token_aware: mode == "on",
        ..ClientOptions::default()
    };
    let mut client = match Client::connect(&addrs, options) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("cannot connect: {e}");
            std::process::exit(1);
        }
    };
    let q = Consistency::Quorum;
    let started = Instant::now();
    for i in 0..count {
        let key = format!("key:{i}");
        if let Err(e) = client.put(key.as_bytes(), b"0123456789abcdef", q, None) {
            eprintln!("SET {key}: {e}");
            std::process::exit(1);
        }
    }
    let sets = count as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for i in 0..count {
        let key = format!("key:{i}");
        if let Err(e) = client.get(key.as_bytes(), q, None) {
            eprintln!("GET {key}: {e}");
            std::process::exit(1);
        }
    }
    let gets = count as f64 / started.elapsed().as_secs_f64();
    println!("{sets:.0} {gets:.0}");
}
