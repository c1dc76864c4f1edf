//! Deterministic simulation of the command layer: the production
//! [`Executor`] (and the node it owns) over [`MemDisk`], fed RESP
//! requests by simulated clients, with a simulated network between nodes.
//! A node alone and clusters of 3 to 5 run the same code.
//!
//! Faults: message loss, duplication and delay, crashes that lose what a
//! disk had not synced, skewed clocks. The checker, on the replies as
//! clients see them (RESP bytes, no versions):
//!
//! * every request is answered, unless its coordinator crashed first;
//! * every value read was written by some `SET` or `MSET`;
//! * a node alone is a register: a `GET` that no write to its key
//!   overlapped returns the last acknowledged write (nil after a `DEL`);
//! * after healing and a round of reads at ALL, every replica of every
//!   key holds the same entry.
//!
//! `cargo test --test command_simulation` runs seeds 1..=200
//! (`DKV_SIM_SEEDS` changes the count); `DKV_SEED=<seed>` replays one.

#[allow(dead_code)]
mod sim;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dkv::command::{ConnId, Executed, Executor, ServerStats, Session, Settings};
use dkv::config::{ClusterConf, NodeAddr};
use dkv::node::{Disk, MemDisk, Node, NodeSettings, Now};
use dkv::peer::Envelope;
use dkv::resp::{self, Limits};
use dkv::wal::FsyncMode;
use dkv::NodeId;
use sim::Rng;

const EPOCH_MS: u64 = 1_700_000_000_000;
const CHAOS_MS: u64 = 2500;
const HEAL_MS: u64 = 2500;
const KEYS: usize = 5;

/// A reply as the client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Ok,
    Int(i64),
    Value(Option<Vec<u8>>),
    Values(Vec<Option<Vec<u8>>>),
    Error(String),
}

/// Parses one whole RESP2 reply of the shapes data commands give.
fn parse_reply(bytes: &[u8]) -> Option<Seen> {
    fn line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        let end = bytes.windows(2).position(|w| w == b"\r\n")?;
        Some((&bytes[..end], &bytes[end + 2..]))
    }
    fn bulk(bytes: &[u8]) -> Option<(Option<Vec<u8>>, &[u8])> {
        let (head, rest) = line(bytes)?;
        let len: i64 = std::str::from_utf8(head.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        if len < 0 {
            return Some((None, rest));
        }
        let len = len as usize;
        Some((Some(rest.get(..len)?.to_vec()), rest.get(len + 2..)?))
    }
    let (head, _) = line(bytes)?;
    let text = String::from_utf8_lossy(&head[1..]).into_owned();
    match head.first()? {
        b'+' if text == "OK" => Some(Seen::Ok),
        b'-' => Some(Seen::Error(text)),
        b':' => Some(Seen::Int(text.parse().ok()?)),
        b'$' => Some(Seen::Value(bulk(bytes)?.0)),
        b'*' => {
            let count: usize = text.parse().ok()?;
            let mut rest = line(bytes)?.1;
            let mut values = Vec::new();
            for _ in 0..count {
                let (value, after) = bulk(rest)?;
                values.push(value);
                rest = after;
            }
            Some(Seen::Values(values))
        }
        _ => None,
    }
}

/// One client request and what came of it.
#[derive(Debug, Clone)]
struct Record {
    args: Vec<Vec<u8>>,
    /// The coordinator (shown when a record is printed).
    #[allow(dead_code)]
    via: NodeId,
    started: u64,
    finished: Option<u64>,
    seen: Option<Seen>,
    coordinator_crashed: bool,
}

impl Record {
    fn name(&self) -> &[u8] {
        &self.args[0]
    }

    /// The keys it touches, and for writes the value each gets (`None`:
    /// deleted).
    fn writes(&self) -> Vec<(&[u8], Option<&[u8]>)> {
        match self.name() {
            b"SET" => vec![(&self.args[1], Some(&self.args[2][..]))],
            b"MSET" => self.args[1..]
                .chunks_exact(2)
                .map(|p| (&p[0][..], Some(&p[1][..])))
                .collect(),
            b"DEL" => self.args[1..].iter().map(|k| (&k[..], None)).collect(),
            _ => Vec::new(),
        }
    }
}

struct SimNode {
    executor: Option<Executor<MemDisk>>,
    /// Kept across crashes: only its synced image survives one.
    disk: MemDisk,
    skew_ms: i64,
    restart_at: u64,
    /// Requests waiting for a completion: call id -> record index.
    pending: BTreeMap<u64, usize>,
    sessions: Vec<Session>,
}

struct InFlight {
    at: u64,
    to: NodeId,
    envelope: Envelope,
}

struct CommandSim {
    rng: Rng,
    now: u64,
    settings: NodeSettings,
    conf: ClusterConf,
    nodes: BTreeMap<NodeId, SimNode>,
    network: Vec<InFlight>,
    records: Vec<Record>,
    keys: Vec<Vec<u8>>,
    next_value: u64,
    chaos: bool,
}

impl CommandSim {
    fn new(seed: u64) -> CommandSim {
        let mut rng = Rng::new(seed);
        let count = [1, 1, 3, 4, 5][rng.below(5) as usize];
        let members: Vec<NodeId> = (1..=count).map(NodeId).collect();
        let mut settings = if count == 1 {
            NodeSettings::single(NodeId(1))
        } else {
            NodeSettings::new(NodeId(1), members.clone(), 3, 2, 2)
        };
        settings.virtual_nodes = 16;
        settings.request_timeout = std::time::Duration::from_millis(300);
        settings.heartbeat_interval = std::time::Duration::from_millis(50);
        settings.failure_timeout = std::time::Duration::from_millis(250);
        let mut conf = ClusterConf {
            replication_factor: settings.replication_factor,
            write_quorum: settings.write_quorum,
            read_quorum: settings.read_quorum,
            virtual_nodes: settings.virtual_nodes,
            ..ClusterConf::default()
        };
        for &id in &members {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 7000 + id.0 as u16));
            conf.nodes.push(NodeAddr {
                id,
                client: addr,
                peer: addr,
            });
        }
        let nodes = members
            .iter()
            .map(|&id| {
                let skew_ms = rng.below(10_000) as i64 - 5_000;
                let node = SimNode {
                    executor: None,
                    disk: MemDisk::new(),
                    skew_ms,
                    restart_at: 0,
                    pending: BTreeMap::new(),
                    sessions: Vec::new(),
                };
                (id, node)
            })
            .collect();
        let mut sim = CommandSim {
            rng,
            now: 0,
            settings,
            conf,
            nodes,
            network: Vec::new(),
            records: Vec::new(),
            keys: (0..KEYS).map(|k| format!("key{k}").into_bytes()).collect(),
            next_value: 0,
            chaos: true,
        };
        for id in members {
            sim.start_node(id);
        }
        sim
    }

    fn clock(&self, id: NodeId) -> Now {
        Now {
            mono: self.now,
            wall: (EPOCH_MS + self.now).saturating_add_signed(self.nodes[&id].skew_ms),
        }
    }

    fn start_node(&mut self, id: NodeId) {
        let now = self.clock(id);
        let node_settings = NodeSettings {
            id,
            ..self.settings.clone()
        };
        let settings = Settings {
            node_id: id,
            bind: std::net::IpAddr::from([127, 0, 0, 1]),
            port: 7000,
            requirepass: None,
            limits: Limits::default(),
            max_output_bytes: 64 << 20,
            max_clients: 10_000,
            fsync: FsyncMode::Always,
            cluster: self.conf.clone(),
        };
        let Some(sim_node) = self.nodes.get_mut(&id) else {
            return;
        };
        let node = Node::new(node_settings, sim_node.disk.clone(), now);
        let mut executor = Executor::new(node, settings, Arc::new(ServerStats::default()), now);
        sim_node.sessions = (0..3).map(|_| executor.open_session(None)).collect();
        sim_node.executor = Some(executor);
    }

    fn crash_node(&mut self, id: NodeId) {
        let restart_at = self.now + 50 + self.rng.below(400);
        let Some(sim_node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(mut executor) = sim_node.executor.take() else {
            return;
        };
        let mut disk = executor.node_mut().disk_mut().clone();
        disk.crash();
        sim_node.disk = disk;
        sim_node.restart_at = restart_at;
        for (_, index) in std::mem::take(&mut sim_node.pending) {
            self.records[index].coordinator_crashed = true;
        }
    }

    fn is_running(&self, id: NodeId) -> bool {
        self.nodes[&id].executor.is_some()
    }

    /// Moves a node's messages into the network and its completions into
    /// the records.
    fn drain(&mut self, id: NodeId) {
        let mut sends = Vec::new();
        let mut done = Vec::new();
        if let Some(sim_node) = self.nodes.get_mut(&id) {
            if let Some(executor) = sim_node.executor.as_mut() {
                while let Some(send) = executor.poll_transmit() {
                    sends.push(send);
                }
                while let Some(completion) = executor.poll_completion() {
                    done.push((completion.conn, completion.reply.to_vec()));
                }
            }
        }
        for (conn, reply) in done {
            let Some(sim_node) = self.nodes.get_mut(&id) else {
                continue;
            };
            let Some(index) = sim_node.pending.remove(&conn.0) else {
                continue;
            };
            let record = &mut self.records[index];
            assert!(record.seen.is_none(), "request {index} answered twice");
            record.finished = Some(self.now);
            record.seen = parse_reply(&reply);
            assert!(record.seen.is_some(), "unreadable reply {reply:?}");
        }
        for (to, envelope) in sends {
            self.transmit(to, envelope);
        }
    }

    fn transmit(&mut self, to: NodeId, envelope: Envelope) {
        if self.chaos && self.rng.chance(40) {
            return;
        }
        let copies = if self.chaos && self.rng.chance(20) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = 1 + self.rng.below(if self.chaos { 30 } else { 4 });
            self.network.push(InFlight {
                at: self.now + delay,
                to,
                envelope: envelope.clone(),
            });
        }
    }

    /// Sends one request to `via` as a client would.
    fn request(&mut self, via: NodeId, args: Vec<Vec<u8>>) {
        let index = self.records.len();
        self.records.push(Record {
            args: args.clone(),
            via,
            started: self.now,
            finished: None,
            seen: None,
            coordinator_crashed: false,
        });
        let now = self.clock(via);
        let Some(sim_node) = self.nodes.get_mut(&via) else {
            return;
        };
        let Some(executor) = sim_node.executor.as_mut() else {
            self.records[index].coordinator_crashed = true;
            return;
        };
        let request = resp::Command::from_args(&args);
        // Each request has its own "connection" id, so a completion names
        // its record directly.
        let conn = ConnId(index as u64);
        let session = &mut sim_node.sessions[index % 3];
        let mut out = Vec::new();
        match executor.execute(now, conn, session, &request, &mut out) {
            Executed::Answered | Executed::Close => {
                let record = &mut self.records[index];
                record.finished = Some(self.now);
                record.seen = parse_reply(&out);
                assert!(record.seen.is_some(), "unreadable reply {out:?}");
            }
            Executed::Pending(_) => {
                sim_node.pending.insert(index as u64, index);
            }
        }
        self.drain(via);
    }

    fn random_request(&mut self) {
        let running: Vec<NodeId> = self
            .nodes
            .keys()
            .copied()
            .filter(|&id| self.is_running(id))
            .collect();
        if running.is_empty() {
            return;
        }
        let via = running[self.rng.below(running.len() as u64) as usize];
        let key = |sim: &mut CommandSim| sim.keys[sim.rng.below(KEYS as u64) as usize].clone();
        let value = |sim: &mut CommandSim| {
            sim.next_value += 1;
            format!("v{}", sim.next_value).into_bytes()
        };
        let args: Vec<Vec<u8>> = match self.rng.below(10) {
            0..=2 => vec![b"GET".to_vec(), key(self)],
            3..=5 => vec![b"SET".to_vec(), key(self), value(self)],
            6 => vec![
                b"MSET".to_vec(),
                key(self),
                value(self),
                key(self),
                value(self),
            ],
            7 => vec![b"MGET".to_vec(), key(self), key(self)],
            8 => vec![b"DEL".to_vec(), key(self)],
            _ => vec![b"EXISTS".to_vec(), key(self), key(self)],
        };
        // An MSET of one key twice would make the checker's life hard.
        if args[0] == b"MSET" && args[1] == args[3] {
            return;
        }
        self.request(via, args);
    }

    fn step(&mut self) {
        self.now += 1;
        let members: Vec<NodeId> = self.nodes.keys().copied().collect();
        for &id in &members {
            if !self.is_running(id) && self.nodes[&id].restart_at <= self.now {
                self.start_node(id);
            }
        }
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.network.len() {
            if self.network[i].at <= self.now {
                due.push(self.network.swap_remove(i));
            } else {
                i += 1;
            }
        }
        for message in due {
            let now = self.clock(message.to);
            if let Some(executor) = self
                .nodes
                .get_mut(&message.to)
                .and_then(|n| n.executor.as_mut())
            {
                executor.handle_message(now, message.envelope);
            }
            self.drain(message.to);
        }
        for &id in &members {
            let now = self.clock(id);
            let sync = self.rng.chance(300);
            if let Some(executor) = self.nodes.get_mut(&id).and_then(|n| n.executor.as_mut()) {
                if sync {
                    for durable in executor.node_mut().disk_mut().sync() {
                        executor.handle_durable(now, durable);
                    }
                }
                executor.handle_tick(now);
            }
            self.drain(id);
        }
        if self.chaos {
            if self.rng.chance(300) {
                self.random_request();
            }
            if self.rng.chance(2) {
                let victim = members[self.rng.below(members.len() as u64) as usize];
                let running = members.iter().filter(|&&id| self.is_running(id)).count();
                if self.is_running(victim) && (running > 1 || members.len() == 1) {
                    self.crash_node(victim);
                }
            }
        }
    }

    fn run(&mut self, millis: u64) {
        for _ in 0..millis {
            self.step();
        }
    }

    fn heal(&mut self) {
        self.chaos = false;
        let members: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in members {
            if !self.is_running(id) {
                self.start_node(id);
            }
        }
    }

    fn entries(&self, id: NodeId, key: &[u8]) -> Option<dkv::Entry> {
        self.nodes[&id]
            .executor
            .as_ref()
            .and_then(|e| e.node().disk().get(key))
    }
}

/// What a passing seed did.
#[derive(Debug)]
#[allow(dead_code)] // `answered` shows in a replay's output
struct Summary {
    nodes: usize,
    requests: usize,
    answered: usize,
    registers: usize,
}

/// Runs one seed; `Err` names the first violated property.
fn run(seed: u64) -> Result<Summary, String> {
    let mut sim = CommandSim::new(seed);
    sim.run(CHAOS_MS);
    sim.heal();
    sim.run(HEAL_MS);
    let members: Vec<NodeId> = sim.nodes.keys().copied().collect();
    // Every session reads at ALL from now on: a read that hears from
    // every replica repairs the stale ones.
    for &via in &members {
        let now = sim.clock(via);
        if let Some(sim_node) = sim.nodes.get_mut(&via) {
            if let Some(executor) = sim_node.executor.as_mut() {
                let all = resp::Command::from_args(["CONSISTENCY", "ALL"]);
                for session in &mut sim_node.sessions {
                    let mut out = Vec::new();
                    let executed = executor.execute(now, ConnId(u64::MAX), session, &all, &mut out);
                    assert_eq!((executed, out), (Executed::Answered, b"+OK\r\n".to_vec()));
                }
            }
        }
    }
    for key in sim.keys.clone() {
        for &via in &members {
            sim.request(via, vec![b"GET".to_vec(), key.clone()]);
        }
    }
    sim.run(1500);

    let written: BTreeSet<Vec<u8>> = sim
        .records
        .iter()
        .flat_map(|r| {
            r.writes()
                .into_iter()
                .filter_map(|(_, v)| v.map(<[u8]>::to_vec))
        })
        .collect();
    for (index, record) in sim.records.iter().enumerate() {
        if record.seen.is_none() && !record.coordinator_crashed {
            return Err(format!("request {index} never answered: {record:?}"));
        }
        let values: Vec<&Vec<u8>> = match &record.seen {
            Some(Seen::Value(Some(v))) => vec![v],
            Some(Seen::Values(vs)) => vs.iter().flatten().collect(),
            _ => Vec::new(),
        };
        for value in values {
            if !written.contains(value) {
                return Err(format!(
                    "request {index} read a value nobody wrote: {value:?}"
                ));
            }
        }
    }
    let registers = if members.len() == 1 {
        check_register(&sim)?
    } else {
        0
    };
    for key in &sim.keys {
        let entries: Vec<Option<dkv::Entry>> = members
            .iter()
            .filter(|&&id| {
                let ring = dkv::ring::Ring::new(&members, sim.settings.virtual_nodes);
                ring.preference_list(key, sim.settings.replication_factor)
                    .contains(&id)
            })
            .map(|&id| sim.entries(id, key))
            .collect();
        if entries.windows(2).any(|w| w[0] != w[1]) {
            return Err(format!(
                "replicas of {:?} differ after healing: {entries:?}",
                String::from_utf8_lossy(key)
            ));
        }
    }
    let answered = sim.records.iter().filter(|r| r.seen.is_some()).count();
    Ok(Summary {
        nodes: members.len(),
        requests: sim.records.len(),
        answered,
        registers,
    })
}

/// A node alone: a GET of a key no write overlapped returns the value of
/// the last write to it acknowledged before the GET began. Returns how
/// many reads it checked.
fn check_register(sim: &CommandSim) -> Result<usize, String> {
    let mut checked = 0;
    let acked = |r: &Record| matches!(r.seen, Some(Seen::Ok) | Some(Seen::Int(_)));
    for (index, read) in sim.records.iter().enumerate() {
        if read.name() != b"GET" {
            continue;
        }
        let Some(Seen::Value(seen)) = &read.seen else {
            continue;
        };
        let Some(read_done) = read.finished else {
            continue;
        };
        let key = &read.args[1][..];
        let writes: Vec<(&Record, Option<&[u8]>)> = sim
            .records
            .iter()
            .flat_map(|w| {
                w.writes()
                    .into_iter()
                    .filter(|(k, _)| *k == key)
                    .map(move |(_, v)| (w, v))
            })
            .collect();
        // A write that overlapped the read, or whose outcome is unknown
        // (it failed, or its node crashed first), leaves the read free to
        // see it or not: skip such reads.
        let uncertain = writes.iter().any(|(w, _)| {
            let overlaps = w.started <= read_done && w.finished.is_none_or(|f| f >= read.started);
            let unknown = !acked(w) && w.started <= read_done;
            overlaps || unknown
        });
        if uncertain {
            continue;
        }
        // One node, one clock: versions follow the order writes started.
        let last = writes
            .iter()
            .filter(|(w, _)| w.finished.is_some_and(|f| f < read.started))
            .max_by_key(|(w, _)| w.started);
        let expected = last.and_then(|(_, v)| v.map(<[u8]>::to_vec));
        checked += 1;
        if &expected != seen {
            let show = |v: &Option<Vec<u8>>| match v {
                Some(v) => format!("{:?}", String::from_utf8_lossy(v)),
                None => "nil".to_string(),
            };
            return Err(format!(
                "GET {:?} (request {index}) saw {}, the last acknowledged write left {}",
                String::from_utf8_lossy(key),
                show(seen),
                show(&expected)
            ));
        }
    }
    Ok(checked)
}

#[test]
fn the_command_layer_survives_chaos_alone_and_in_a_cluster() {
    let summaries = sim::seeds::run_seeds("command_simulation", 200, run);
    let alone = summaries.iter().filter(|s| s.nodes == 1).count();
    let registers: usize = summaries.iter().map(|s| s.registers).sum();
    let requests: usize = summaries.iter().map(|s| s.requests).sum();
    println!(
        "command simulation: {} seeds ({alone} of a node alone), {requests} requests, {registers} reads checked as a register",
        summaries.len()
    );
    assert!(
        std::env::var_os("DKV_SEED").is_some() || (alone > 0 && registers > 0),
        "no seed checked a node alone"
    );
}

#[test]
fn replies_parse_as_clients_read_them() {
    assert_eq!(parse_reply(b"+OK\r\n"), Some(Seen::Ok));
    assert_eq!(parse_reply(b":3\r\n"), Some(Seen::Int(3)));
    assert_eq!(parse_reply(b"$-1\r\n"), Some(Seen::Value(None)));
    assert_eq!(
        parse_reply(b"$2\r\nab\r\n"),
        Some(Seen::Value(Some(b"ab".to_vec())))
    );
    assert_eq!(
        parse_reply(b"*2\r\n$1\r\na\r\n$-1\r\n"),
        Some(Seen::Values(vec![Some(b"a".to_vec()), None]))
    );
    assert!(matches!(
        parse_reply(b"-UNAVAILABLE x\r\n"),
        Some(Seen::Error(_))
    ));
}
