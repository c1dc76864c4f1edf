//! A deterministic simulator: several sans-IO nodes in one thread over a
//! simulated network, all randomness from one seed.
//!
//! The network drops, delays (and so reorders) and duplicates messages,
//! partitions a node off and cuts single links one way; nodes crash
//! (losing what their disk had not synced) and restart, and pause (a
//! stopped process: no ticks, messages and requests wait); wall clocks are
//! skewed, in some seeds one node far past the drift limit. Clients issue
//! random reads, writes and deletes on some keys; on the others, sequential
//! clients (a writer and two readers per key) issue one request at a time
//! through one coordinator after another, the next often in the same
//! millisecond as the last reply. Every request is recorded with the order
//! of its invocation and reply among all events, for the checkers.

use std::collections::{BTreeMap, BTreeSet};

use dkv::node::{Consistency, MemDisk, Node, NodeSettings, Now, Op, OpId, OpResult, Output};
use dkv::peer::Envelope;
use dkv::NodeId;

pub mod rng;
pub mod seeds;
pub use rng::Rng;

/// Network faults, in per-mille per message or per millisecond.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub drop: u64,
    pub duplicate: u64,
    pub max_delay_ms: u64,
    pub partition: u64,
    pub cut: u64,
    pub crash: u64,
    /// A crash that also loses the node's whole disk (it restarts empty).
    pub lose_storage: u64,
    pub pause: u64,
    pub client_ops: u64,
    pub writer_ops: u64,
}

impl Faults {
    pub fn chaos() -> Faults {
        Faults {
            drop: 50,
            duplicate: 30,
            max_delay_ms: 40,
            partition: 2,
            cut: 3,
            crash: 2,
            lose_storage: 0,
            pause: 2,
            client_ops: 300,
            writer_ops: 200,
        }
    }

    pub fn calm() -> Faults {
        Faults {
            drop: 0,
            duplicate: 0,
            max_delay_ms: 5,
            partition: 0,
            cut: 0,
            crash: 0,
            lose_storage: 0,
            pause: 0,
            client_ops: 0,
            writer_ops: 0,
        }
    }
}

/// A request as the simulated client holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimOp {
    Get {
        key: Vec<u8>,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    /// `SET key value PXAT expires_at`.
    #[allow(dead_code)] // only some simulations send it
    PutUntil {
        key: Vec<u8>,
        value: Vec<u8>,
        expires_at: u64,
    },
    /// `INCRBY key delta`.
    #[allow(dead_code)] // only some simulations send it
    Add {
        key: Vec<u8>,
        delta: i64,
    },
}

impl SimOp {
    pub fn key(&self) -> &[u8] {
        match self {
            SimOp::Get { key }
            | SimOp::Put { key, .. }
            | SimOp::Delete { key }
            | SimOp::PutUntil { key, .. }
            | SimOp::Add { key, .. } => key,
        }
    }

    fn as_op(&self) -> Op<'_> {
        match self {
            SimOp::Get { key } => Op::Get { key },
            SimOp::Put { key, value } => Op::Put {
                key,
                value,
                expires_at: None,
            },
            SimOp::Delete { key } => Op::Delete { key },
            SimOp::PutUntil {
                key,
                value,
                expires_at,
            } => Op::Put {
                key,
                value,
                expires_at: Some(*expires_at),
            },
            SimOp::Add { key, delta } => Op::Add {
                key,
                delta: dkv::counter::Delta::Int(*delta),
            },
        }
    }
}

/// A client request and what came of it.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Vec<u8>,
    pub op: &'static str,
    pub value: Option<Vec<u8>>,
    pub consistency: Consistency,
    pub started: u64,
    pub finished: Option<u64>,
    pub result: Option<OpResult>,
    /// The node coordinating it.
    pub via: NodeId,
    /// Its coordinator crashed before answering: the client saw its
    /// connection drop, and the outcome is unknown.
    pub coordinator_crashed: bool,
    /// The client stopped waiting ([`CLIENT_TIMEOUT_MS`] passed with no
    /// reply): to it the outcome is unknown.
    pub gave_up: bool,
    /// The sequential client that issued it (its next request begins only
    /// once this one is answered or given up on), if any.
    pub client: Option<usize>,
    /// Its place among all invocations and replies of the run.
    pub invoked: u64,
    /// The reply's place, when one came.
    pub returned: Option<u64>,
}

/// How long a client waits for a reply before it gives up.
pub const CLIENT_TIMEOUT_MS: u64 = 600;

/// What a sequential client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Writes and deletes.
    Writer,
    /// Quorum reads.
    Reader,
}

/// A client of one key that sends one request at a time, each through a
/// node it picks anew.
struct Client {
    key: Vec<u8>,
    role: Role,
    waiting: Option<usize>,
    last_via: Option<NodeId>,
}

/// Keys the sequential clients use (the first ones); random requests use
/// the rest.
pub const SEQUENTIAL_KEYS: usize = 2;

struct InFlight {
    at: u64,
    to: NodeId,
    envelope: Envelope,
}

struct SimNode {
    node: Option<Node<MemDisk>>,
    /// Kept across crashes: only its synced image survives one.
    disk: MemDisk,
    skew_ms: i64,
    restart_at: u64,
    /// A paused node does nothing until then.
    paused_until: u64,
    /// Requests sent to it while paused, run when it resumes, each with
    /// its deadline.
    inbox: Vec<(usize, SimOp, Consistency, u64)>,
}

pub struct Sim {
    pub rng: Rng,
    pub now: u64,
    nodes: BTreeMap<NodeId, SimNode>,
    settings: NodeSettings,
    network: Vec<InFlight>,
    partitioned: BTreeSet<(NodeId, NodeId)>,
    pub faults: Faults,
    pub records: Vec<Record>,
    pub keys: Vec<Vec<u8>>,
    next_value: u64,
    clients: Vec<Client>,
    /// Invocations and replies so far.
    events: u64,
}

const EPOCH_MS: u64 = 1_700_000_000_000;

impl Sim {
    pub fn new(seed: u64) -> Sim {
        Sim::new_with(seed, |_, _| {})
    }

    /// [`Sim::new`] with its node settings and faults changed by `tweak`
    /// before any node starts.
    pub fn new_with(seed: u64, tweak: impl FnOnce(&mut NodeSettings, &mut Faults)) -> Sim {
        let mut rng = Rng::new(seed);
        // One seed in five runs a node alone: N = W = R = 1, the same code.
        let count = [1, 3, 3, 4, 5][rng.below(5) as usize];
        let members: Vec<NodeId> = (1..=count).map(NodeId).collect();
        let mut settings = if count == 1 {
            NodeSettings::single(members[0])
        } else {
            NodeSettings::new(members[0], members.clone(), 3, 2, 2)
        };
        settings.virtual_nodes = 16;
        settings.request_timeout = std::time::Duration::from_millis(300);
        settings.heartbeat_interval = std::time::Duration::from_millis(50);
        settings.failure_timeout = std::time::Duration::from_millis(250);
        let mut nodes = BTreeMap::new();
        // In one cluster seed in four, one node's clock is a minute off,
        // twice the drift limit, ahead or behind.
        let runaway = (count > 1 && rng.chance(250)).then(|| {
            let id = members[rng.below(count as u64) as usize];
            let minute = if rng.chance(500) { 60_000 } else { -60_000 };
            (id, minute)
        });
        for &id in &members {
            // Skews up to +-5 s: far below the 30 s drift limit.
            let mut skew_ms = rng.below(10_000) as i64 - 5_000;
            if let Some((runaway_id, minute)) = runaway {
                if runaway_id == id {
                    skew_ms = minute;
                }
            }
            nodes.insert(
                id,
                SimNode {
                    node: None,
                    disk: MemDisk::new(),
                    skew_ms,
                    restart_at: 0,
                    paused_until: 0,
                    inbox: Vec::new(),
                },
            );
        }
        let keys: Vec<Vec<u8>> = (0..6).map(|k| format!("key{k}").into_bytes()).collect();
        let clients = keys[..SEQUENTIAL_KEYS]
            .iter()
            .flat_map(|key| {
                // One writer per key: with two, a write stamped again after a
                // refusal can be read, overwritten by the other writer's and
                // read again, which is Last-Write-Wins, not linearizable
                // (README: what QUORUM gives).
                [Role::Writer, Role::Reader, Role::Reader].map(|role| Client {
                    key: key.clone(),
                    role,
                    waiting: None,
                    last_via: None,
                })
            })
            .collect();
        let mut faults = Faults::chaos();
        tweak(&mut settings, &mut faults);
        let mut sim = Sim {
            rng,
            now: 0,
            nodes,
            settings,
            network: Vec::new(),
            partitioned: BTreeSet::new(),
            faults,
            records: Vec::new(),
            keys,
            next_value: 0,
            clients,
            events: 0,
        };
        for id in members {
            sim.start_node(id);
        }
        sim
    }

    pub fn members(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The time node `id` judges expiries by now (its agreed time), if it
    /// runs.
    #[allow(dead_code)] // only some simulations ask
    pub fn agreed_time(&self, id: NodeId) -> Option<u64> {
        let wall = self.clock(id).wall;
        self.nodes[&id].node.as_ref().map(|n| n.expiry_time(wall))
    }

    /// The true wall-clock time (no node's skew), unix ms.
    #[allow(dead_code)] // only some simulations ask
    pub fn wall(&self) -> u64 {
        EPOCH_MS + self.now
    }

    fn clock(&self, id: NodeId) -> Now {
        let skew = self.nodes[&id].skew_ms;
        Now {
            mono: self.now,
            wall: (EPOCH_MS + self.now).saturating_add_signed(skew),
        }
    }

    fn start_node(&mut self, id: NodeId) {
        let now = self.clock(id);
        let mut settings = self.settings.clone();
        settings.id = id;
        let Some(sim_node) = self.nodes.get_mut(&id) else {
            return;
        };
        let disk = sim_node.disk.clone();
        sim_node.node = Some(Node::new(settings, disk, now));
    }

    fn crash_node(&mut self, id: NodeId) {
        for record in self
            .records
            .iter_mut()
            .filter(|r| r.via == id && r.result.is_none())
        {
            record.coordinator_crashed = true;
        }
        let restart_at = self.now + 50 + self.rng.below(400);
        let Some(sim_node) = self.nodes.get_mut(&id) else {
            return;
        };
        sim_node.paused_until = 0;
        for (index, ..) in sim_node.inbox.drain(..) {
            self.records[index].coordinator_crashed = true;
        }
        if let Some(node) = sim_node.node.take() {
            let mut disk = node.disk().clone();
            disk.crash();
            sim_node.disk = disk;
            sim_node.restart_at = restart_at;
        }
    }

    fn is_running(&self, id: NodeId) -> bool {
        self.nodes[&id].node.is_some()
    }

    fn is_paused(&self, id: NodeId) -> bool {
        self.nodes[&id].paused_until > self.now
    }

    /// Drains a node's outputs into the network and the records.
    fn drain(&mut self, id: NodeId) {
        let mut outputs = Vec::new();
        if let Some(node) = self.nodes.get_mut(&id).and_then(|n| n.node.as_mut()) {
            while let Some(output) = node.poll_output() {
                outputs.push(output);
            }
        }
        for output in outputs {
            match output {
                Output::Send { to, envelope } => self.transmit(id, to, envelope),
                Output::Reply { op, result } => {
                    let record = &mut self.records[op.call as usize];
                    assert!(
                        record.result.is_none(),
                        "request {} answered twice",
                        op.call
                    );
                    record.finished = Some(self.now);
                    record.result = Some(result);
                    self.events += 1;
                    record.returned = Some(self.events);
                }
            }
        }
    }

    fn transmit(&mut self, from: NodeId, to: NodeId, envelope: Envelope) {
        if self.partitioned.contains(&(from, to)) || self.rng.chance(self.faults.drop) {
            return;
        }
        let copies = if self.rng.chance(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + 1 + self.rng.below(self.faults.max_delay_ms);
            self.network.push(InFlight {
                at,
                to,
                envelope: envelope.clone(),
            });
        }
    }

    /// Issues a client request to node `via`.
    pub fn request(&mut self, via: NodeId, op: SimOp, consistency: Consistency) {
        let client = OpId::single(self.records.len() as u64);
        let (name, value) = match &op {
            SimOp::Get { .. } => ("get", None),
            SimOp::Put { value, .. } => ("put", Some(value.clone())),
            SimOp::Delete { .. } => ("delete", None),
            SimOp::PutUntil { value, .. } => ("put", Some(value.clone())),
            SimOp::Add { delta, .. } => ("add", Some(delta.to_string().into_bytes())),
        };
        self.events += 1;
        self.records.push(Record {
            key: op.key().to_vec(),
            op: name,
            value,
            consistency,
            started: self.now,
            finished: None,
            result: None,
            via,
            coordinator_crashed: false,
            gave_up: false,
            client: None,
            invoked: self.events,
            returned: None,
        });
        // The client's deadline, on the cluster's time as the coordinator
        // sees it (as if the client's clock agreed): the node refuses the
        // request if it reads it later than that.
        let wall = self.clock(via).wall;
        let cluster_wall = self.nodes[&via]
            .node
            .as_ref()
            .map_or(wall, |node| node.cluster_time(wall));
        let deadline = cluster_wall + CLIENT_TIMEOUT_MS;
        if self.is_paused(via) {
            // A stopped process: the request waits in its socket.
            let index = self.records.len() - 1;
            if let Some(sim_node) = self.nodes.get_mut(&via) {
                sim_node.inbox.push((index, op, consistency, deadline));
            }
            return;
        }
        self.run_request(via, client, &op, consistency, deadline);
    }

    fn run_request(
        &mut self,
        via: NodeId,
        client: OpId,
        op: &SimOp,
        consistency: Consistency,
        deadline: u64,
    ) {
        let now = self.clock(via);
        if let Some(node) = self.nodes.get_mut(&via).and_then(|n| n.node.as_mut()) {
            node.handle_request(now, client, op.as_op(), consistency, Some(deadline));
        }
        self.drain(via);
    }

    /// Sequential clients: each gives up on a request after the client
    /// timeout, and starts its next one (often at once) through a node it
    /// picks anew.
    fn drive_clients(&mut self) {
        for c in 0..self.clients.len() {
            if let Some(index) = self.clients[c].waiting {
                let record = &mut self.records[index];
                if record.result.is_some() || record.coordinator_crashed {
                    self.clients[c].waiting = None;
                } else if self.now >= record.started + CLIENT_TIMEOUT_MS {
                    record.gave_up = true;
                    self.clients[c].waiting = None;
                } else {
                    continue;
                }
                // The next request right after the reply, half the time.
                if self.rng.chance(500) {
                    self.start_client(c);
                }
                continue;
            }
            if self.rng.chance(self.faults.writer_ops) {
                self.start_client(c);
            }
        }
    }

    fn start_client(&mut self, c: usize) {
        let running: Vec<NodeId> = self
            .members()
            .into_iter()
            .filter(|&id| self.is_running(id) && Some(id) != self.clients[c].last_via)
            .collect();
        let Some(&via) = running.get(self.rng.below(running.len().max(1) as u64) as usize) else {
            return;
        };
        let key = self.clients[c].key.clone();
        let op = match self.clients[c].role {
            Role::Reader => SimOp::Get { key },
            Role::Writer if self.rng.chance(150) => SimOp::Delete { key },
            Role::Writer => {
                self.next_value += 1;
                SimOp::Put {
                    key,
                    value: format!("w{}", self.next_value).into_bytes(),
                }
            }
        };
        let index = self.records.len();
        self.clients[c].waiting = Some(index);
        self.clients[c].last_via = Some(via);
        self.request(via, op, Consistency::Quorum);
        self.records[index].client = Some(c);
    }

    fn random_request(&mut self) {
        let running: Vec<NodeId> = self
            .members()
            .into_iter()
            .filter(|&id| self.is_running(id))
            .collect();
        if running.is_empty() {
            return;
        }
        let via = running[self.rng.below(running.len() as u64) as usize];
        let random_keys = &self.keys[SEQUENTIAL_KEYS..];
        let key = random_keys[self.rng.below(random_keys.len() as u64) as usize].clone();
        let op = match self.rng.below(10) {
            0..=3 => SimOp::Get { key },
            4..=8 => {
                self.next_value += 1;
                SimOp::Put {
                    key,
                    value: format!("v{}", self.next_value).into_bytes(),
                }
            }
            _ => SimOp::Delete { key },
        };
        let consistency = if self.rng.chance(100) {
            Consistency::One
        } else {
            Consistency::Quorum
        };
        self.request(via, op, consistency);
    }

    fn random_fault(&mut self) {
        let members = self.members();
        if self.rng.chance(self.faults.partition) {
            if self.partitioned.is_empty() {
                // Cut one node off from the others, both ways.
                let victim = members[self.rng.below(members.len() as u64) as usize];
                for &other in &members {
                    if other != victim {
                        self.partitioned.insert((victim, other));
                        self.partitioned.insert((other, victim));
                    }
                }
            } else {
                self.partitioned.clear();
            }
        }
        if self.rng.chance(self.faults.cut) && members.len() > 1 {
            // One link, one way: `from` can no longer reach `to`.
            let from = members[self.rng.below(members.len() as u64) as usize];
            let to = members[self.rng.below(members.len() as u64) as usize];
            if from != to && !self.partitioned.remove(&(from, to)) {
                self.partitioned.insert((from, to));
            }
        }
        if self.rng.chance(self.faults.pause) {
            let victim = members[self.rng.below(members.len() as u64) as usize];
            let running = members
                .iter()
                .filter(|&&id| self.is_running(id) && !self.is_paused(id))
                .count();
            if self.is_running(victim)
                && !self.is_paused(victim)
                && (running > 1 || members.len() == 1)
            {
                let until = self.now + 100 + self.rng.below(700);
                if let Some(sim_node) = self.nodes.get_mut(&victim) {
                    sim_node.paused_until = until;
                }
            }
        }
        if self.rng.chance(self.faults.crash) {
            let victim = members[self.rng.below(members.len() as u64) as usize];
            let running = members.iter().filter(|&&id| self.is_running(id)).count();
            // A node alone crashes too (its synced writes must survive);
            // in a cluster one node is always left running.
            if self.is_running(victim) && (running > 1 || members.len() == 1) {
                self.crash_node(victim);
            }
        }
        if self.rng.chance(self.faults.lose_storage) && members.len() > 1 {
            let victim = members[self.rng.below(members.len() as u64) as usize];
            let running = members.iter().filter(|&&id| self.is_running(id)).count();
            if self.is_running(victim) && running > 1 {
                self.crash_node(victim);
                if let Some(sim_node) = self.nodes.get_mut(&victim) {
                    sim_node.disk = MemDisk::new();
                }
            }
        }
    }

    /// One simulated millisecond.
    pub fn step(&mut self) {
        self.now += 1;
        let members = self.members();
        // Restarts, and paused nodes that resume run what waited for them.
        for &id in &members {
            if !self.is_running(id) && self.nodes[&id].restart_at <= self.now {
                self.start_node(id);
            }
            if self.is_running(id) && !self.is_paused(id) {
                let inbox = self
                    .nodes
                    .get_mut(&id)
                    .map(|n| std::mem::take(&mut n.inbox))
                    .unwrap_or_default();
                for (index, op, consistency, deadline) in inbox {
                    self.run_request(id, OpId::single(index as u64), &op, consistency, deadline);
                }
            }
        }
        // Deliveries due now, in a seeded order.
        let mut due = Vec::new();
        let mut index = 0;
        while index < self.network.len() {
            let message = &self.network[index];
            // A paused node's messages wait for it in the network.
            if message.at <= self.now && !self.is_paused(message.to) {
                due.push(self.network.swap_remove(index));
            } else {
                index += 1;
            }
        }
        for message in due {
            if !self.is_running(message.to) {
                continue;
            }
            let now = self.clock(message.to);
            if let Some(node) = self
                .nodes
                .get_mut(&message.to)
                .and_then(|n| n.node.as_mut())
            {
                node.handle_message(now, message.envelope);
            }
            self.drain(message.to);
        }
        // Disks sync now and then; timers fire.
        for &id in &members {
            if self.is_paused(id) {
                continue;
            }
            let now = self.clock(id);
            let sync = self.rng.chance(300);
            if let Some(node) = self.nodes.get_mut(&id).and_then(|n| n.node.as_mut()) {
                if sync {
                    for durable in node.disk_mut().sync() {
                        node.handle_durable(now, durable);
                    }
                }
                if sync || node.poll_timeout().is_some_and(|t| t <= now.mono) {
                    node.handle_tick(now);
                }
            }
            self.drain(id);
        }
        if self.rng.chance(self.faults.client_ops) {
            self.random_request();
        }
        self.drive_clients();
        self.random_fault();
    }

    pub fn run(&mut self, millis: u64) {
        for _ in 0..millis {
            self.step();
        }
    }

    /// Ends every fault: restarts crashed nodes, heals partitions, stops
    /// drops and duplicates.
    pub fn heal(&mut self) {
        self.faults = Faults::calm();
        self.partitioned.clear();
        for sim_node in self.nodes.values_mut() {
            sim_node.paused_until = 0;
        }
        for id in self.members() {
            if !self.is_running(id) {
                self.start_node(id);
            }
        }
    }

    /// The local entries of every running node.
    pub fn replica_entries(&self, id: NodeId, key: &[u8]) -> Option<dkv::Entry> {
        self.nodes[&id]
            .node
            .as_ref()
            .and_then(|n| n.disk().entries().get(key).cloned())
    }

    /// The nodes, their clock skews and what each sees, for a failing
    /// seed's report.
    pub fn describe(&self) -> String {
        self.nodes
            .iter()
            .map(|(id, n)| {
                let state = n.node.as_ref().map_or("down".to_string(), |node| {
                    format!(
                        "hints {:?}, clock {:?}, sees {:?}",
                        node.hints_pending(),
                        node.clock_skew(),
                        node.peer_states()
                    )
                });
                format!("node {id} skew {} ms: {state}", n.skew_ms)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// N.
    pub fn replication_factor(&self) -> usize {
        self.settings.replication_factor
    }

    pub fn preference_list(&self, key: &[u8]) -> Vec<NodeId> {
        let node = self
            .nodes
            .values()
            .find_map(|n| n.node.as_ref())
            .expect("a running node");
        node.ring()
            .preference_list(key, self.settings.replication_factor)
    }

    pub fn hints_pending(&self) -> usize {
        self.nodes
            .values()
            .filter_map(|n| n.node.as_ref())
            .map(|n| n.hints_pending().iter().map(|(_, c)| c).sum::<usize>())
            .sum()
    }
}
