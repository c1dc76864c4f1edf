//! `INFO`: Redis-style `key:value` lines in sections, from the settings,
//! the shared counters, the node and its disk.

use std::fmt::{Display, Write};
use std::sync::atomic::Ordering;

use crate::command::admin::Context;
use crate::node::{ClockSkew, Disk};
use crate::wal::FsyncMode;

const SECTIONS: &[(&str, &str)] = &[
    ("server", "Server"),
    ("clients", "Clients"),
    ("memory", "Memory"),
    ("persistence", "Persistence"),
    ("replication", "Replication"),
    ("stats", "Stats"),
    ("cpu", "CPU"),
    ("commandstats", "Commandstats"),
    ("latencystats", "Latencystats"),
    ("keyspace", "Keyspace"),
    ("cluster", "Cluster"),
    ("aae", "Aae"),
];

/// Sections `INFO` alone (or `INFO default`) leaves out, as Redis does.
const NOT_DEFAULT: &[&str] = &["commandstats", "latencystats"];

/// Renders the sections named (all of them when none, `all`,
/// `everything` or `default` is asked for).
pub(crate) fn render<'a, D: Disk>(
    context: &Context<'_, D>,
    sections: impl Iterator<Item = &'a [u8]>,
) -> String {
    let wanted: Vec<String> = sections
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let all = wanted
        .iter()
        .any(|w| matches!(w.as_str(), "all" | "everything"));
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let mut out = String::new();
    for (name, title) in SECTIONS {
        let chosen =
            all || (default && !NOT_DEFAULT.contains(name)) || wanted.iter().any(|w| w == name);
        if chosen {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            let _ = write!(out, "# {title}\r\n");
            let mut lines = Lines(&mut out);
            section(context, name, &mut lines);
        }
    }
    out
}

struct Lines<'a>(&'a mut String);

impl Lines<'_> {
    fn add(&mut self, key: &str, value: impl Display) {
        // Writing to a String cannot fail.
        let _ = write!(self.0, "{key}:{value}\r\n");
    }
}

fn section<D: Disk>(context: &Context<'_, D>, name: &str, lines: &mut Lines<'_>) {
    let settings = context.settings;
    let stats = context.stats;
    let node = context.node;
    match name {
        "server" => {
            // Clients that gate features on the Redis version see a modern one.
            lines.add("redis_version", "7.0.0");
            lines.add("dkv_version", env!("CARGO_PKG_VERSION"));
            lines.add("redis_mode", "standalone");
            lines.add("os", std::env::consts::OS);
            lines.add("process_id", std::process::id());
            lines.add("node_id", settings.node_id);
            lines.add("tcp_port", settings.port);
            lines.add("bind", settings.bind);
            let uptime = context.now.mono / 1000;
            lines.add("uptime_in_seconds", uptime);
            lines.add("uptime_in_days", uptime / 86_400);
        }
        "clients" => {
            lines.add(
                "connected_clients",
                stats.connected_clients.load(Ordering::Relaxed),
            );
            lines.add("maxclients", settings.max_clients);
            lines.add(
                "client_recent_max_output_buffer",
                stats.max_output_buffer.load(Ordering::Relaxed),
            );
        }
        "memory" => {
            let engine = node.disk().stats().engine;
            lines.add("used_memory", engine.bytes);
            lines.add("used_memory_rss", resident_bytes());
            lines.add("tombstones", engine.tombstones);
        }
        "persistence" => {
            let disk = node.disk().stats();
            let fsync = settings.fsync;
            lines.add("loading", 0);
            lines.add("aof_enabled", u8::from(fsync != FsyncMode::Never));
            lines.add(
                "wal_fsync",
                match fsync {
                    FsyncMode::Always => "always".to_string(),
                    FsyncMode::Periodic(every) => format!("periodic-{}ms", every.as_millis()),
                    FsyncMode::Never => "never".to_string(),
                },
            );
            for (name, value) in &disk.persistence {
                lines.add(name, value);
            }
        }
        "stats" => {
            lines.add(
                "total_connections_received",
                stats.connections_received.load(Ordering::Relaxed),
            );
            lines.add(
                "total_commands_processed",
                stats.commands.load(Ordering::Relaxed),
            );
            lines.add(
                "rejected_connections",
                stats.rejected_connections.load(Ordering::Relaxed),
            );
            lines.add(
                "client_output_buffer_limit_disconnections",
                stats
                    .client_output_buffer_limit_disconnections
                    .load(Ordering::Relaxed),
            );
        }
        "cluster" => {
            let conf = &settings.cluster;
            lines.add("cluster_name", &conf.cluster_name);
            lines.add(
                "cluster_mode",
                if conf.nodes.len() > 1 {
                    "replicated"
                } else {
                    "single"
                },
            );
            lines.add("replication_factor", conf.replication_factor);
            lines.add("write_quorum", conf.write_quorum);
            lines.add("read_quorum", conf.read_quorum);
            lines.add("virtual_nodes", conf.virtual_nodes);
            lines.add("cluster_size", conf.nodes.len());
            lines.add("ring_tokens", node.ring().token_count());
            // Where clients reach each member: what a token-aware client
            // needs, with the ring's shape above, to find a key's replicas.
            if conf.nodes.len() > 1 {
                for member in &conf.nodes {
                    lines.add(&format!("member_{}", member.id), member.client);
                }
            }
            lines.add(&format!("node_{}", settings.node_id), "self,up");
            for (id, up) in node.peer_states() {
                let state = if up { "up" } else { "down" };
                let linked = context.links.get(&id).copied().unwrap_or(false);
                let link = if linked { "connected" } else { "disconnected" };
                lines.add(&format!("node_{id}"), format!("{state},{link}"));
            }
            let pending = node.hints_pending();
            let total: usize = pending.iter().map(|(_, n)| n).sum();
            lines.add("hints_pending", total);
            lines.add("hints_pending_bytes", node.hints_pending_bytes());
            for (target, count) in &pending {
                lines.add(&format!("hints_pending_node_{target}"), count);
            }
            let stats = node.stats();
            lines.add("hints_delivered", stats.hints_delivered);
            lines.add("hints_dropped", stats.hints_dropped);
            lines.add("read_repairs", stats.read_repairs);
            lines.add("read_hedges", stats.read_hedges);
            lines.add("quorum_failures", stats.quorum_failures);
            lines.add("clock_refusals", stats.clock_refusals);
            lines.add("restamps", stats.restamps);
            lines.add("clock_ahead_refusals", stats.clock_ahead_refusals);
            lines.add("deadlines_passed", stats.deadlines_passed);
            let (skew, by) = match node.clock_skew() {
                ClockSkew::InStep => ("in_step", 0),
                ClockSkew::Ahead(by) => ("ahead", by),
                ClockSkew::Behind(by) => ("behind", by),
            };
            lines.add("clock_skew", skew);
            lines.add("clock_skew_ms", by);
            for (name, counter) in [
                ("peer_messages_sent", &context.stats.peer_messages_sent),
                (
                    "peer_messages_received",
                    &context.stats.peer_messages_received,
                ),
                ("peer_socket_writes", &context.stats.peer_socket_writes),
            ] {
                lines.add(name, counter.load(Ordering::Relaxed));
            }
            lines.add(
                "peer_handshakes_refused",
                context
                    .stats
                    .peer_handshakes_refused
                    .load(Ordering::Relaxed),
            );
        }
        "replication" => {
            // dkv replicates its own way (`INFO cluster`); to a Redis
            // client every node is a primary that takes writes.
            lines.add("role", "master");
            lines.add("connected_slaves", 0);
            lines.add("master_failover_state", "no-failover");
            lines.add("master_repl_offset", 0);
        }
        "aae" => {
            let aae = node.aae_stats();
            lines.add("aae_enabled", u8::from(node.settings().aae_enabled));
            lines.add("aae_partitions", aae.partitions);
            lines.add("aae_partitions_in_sync", aae.partitions_in_sync);
            lines.add("aae_exchanges", aae.exchanges);
            lines.add("aae_exchanges_in_sync", aae.exchanges_in_sync);
            lines.add("aae_segments_differing", aae.segments_differing);
            lines.add("aae_keys_repaired", aae.keys_repaired);
            lines.add("aae_bytes_repaired", aae.bytes_repaired);
            for (peer, at) in &aae.last_cycle_per_peer {
                lines.add(&format!("aae_last_cycle_node_{peer}_ms"), at);
            }
        }
        "keyspace" => {
            // This node's own copies, as the node sees them.
            let engine = node.disk().stats().engine;
            if engine.keys > 0 {
                let (keys, expires) = (engine.keys, engine.expiring);
                lines.add("db0", format!("keys={keys},expires={expires},avg_ttl=0"));
            }
        }
        "cpu" => {
            let (system, user) = cpu_seconds();
            lines.add("used_cpu_sys", format!("{system:.6}"));
            lines.add("used_cpu_user", format!("{user:.6}"));
            lines.add("used_cpu_sys_children", "0.000000");
            lines.add("used_cpu_user_children", "0.000000");
        }
        "commandstats" => context.command_stats.render_commandstats(lines.0),
        "latencystats" => context.command_stats.render_latencystats(lines.0),
        _ => {}
    }
}

/// CPU time this process has used, system and user, in seconds.
fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage writes into the struct it is given and reads
    // nothing else; a zeroed rusage is a valid value to hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_stime), seconds(usage.ru_utime))
}

/// Resident set size of this process, from /proc (0 where unavailable).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}
