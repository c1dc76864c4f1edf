//! The fault suite's cluster of real `dkv-node` processes: each node under
//! a uid of its own (so an iptables `owner` rule can cut what one sends to
//! another), started, stopped, killed, paused and restarted, optionally
//! under libfaketime; and [`Cut`], a one-way link cut that lasts as long
//! as the value.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::free_port;
use dkv::client::{Client, ClientOptions};

pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// Nodes run as uid `UID_BASE + id` when the test runs as root.
pub const UID_BASE: u32 = 61_000;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn has_iptables() -> bool {
    Command::new("iptables")
        .args(["-w", "-L", "OUTPUT", "-n"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One iptables rule, removed when dropped (even if the test panics).
pub struct Cut {
    rule: Vec<String>,
}

impl Cut {
    /// Drops every packet node `from_uid` sends to 127.0.0.1:`port`.
    pub fn new(from_uid: u32, port: u16) -> Option<Cut> {
        let rule: Vec<String> = [
            "OUTPUT",
            "-o",
            "lo",
            "-m",
            "owner",
            "--uid-owner",
            &from_uid.to_string(),
            "-p",
            "tcp",
            "-d",
            "127.0.0.1",
            "--dport",
            &port.to_string(),
            "-j",
            "DROP",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ok = Command::new("iptables")
            .args(["-w", "-A"])
            .args(&rule)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Cut { rule })
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        let _ = Command::new("iptables")
            .args(["-w", "-D"])
            .args(&self.rule)
            .status();
    }
}

pub struct Member {
    pub client: u16,
    pub peer: u16,
}

/// A cluster of `dkv-node` processes.
pub struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    pub members: Vec<Member>,
    nodes: Vec<Option<Child>>,
    pub as_root: bool,
}

impl Cluster {
    pub fn start(count: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let members: Vec<Member> = (0..count)
            .map(|_| Member {
                client: free_port(),
                peer: free_port(),
            })
            .collect();
        let mut text = String::from(
            "cluster_name = faults\nreplication_factor = 3\nwrite_quorum = 2\nread_quorum = 2\n",
        );
        for (i, m) in members.iter().enumerate() {
            text.push_str(&format!(
                "node {} 127.0.0.1:{} {}\n",
                i + 1,
                m.client,
                m.peer
            ));
        }
        let conf = dir.path().join("cluster.conf");
        std::fs::write(&conf, text).unwrap();
        let as_root = is_root();
        if as_root {
            // The nodes run as other users: they must read the conf and
            // create their data directories.
            set_mode(dir.path(), 0o777);
            set_mode(&conf, 0o644);
        }
        let mut cluster = Cluster {
            dir,
            conf,
            members,
            nodes: (0..count).map(|_| None).collect(),
            as_root,
        };
        for id in 1..=count {
            cluster.launch(id, None);
        }
        cluster.wait_until_connected();
        cluster
    }

    pub fn addr(&self, id: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.members[id - 1].client))
    }

    pub fn uid(id: usize) -> u32 {
        UID_BASE + id as u32
    }

    /// Starts node `id`, under libfaketime `offset` (such as "+60") when
    /// given, and waits until it accepts connections.
    pub fn launch(&mut self, id: usize, offset: Option<&str>) {
        let data: PathBuf = self.dir.path().join(format!("node-{id}"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_dkv-node"));
        command
            .args(["--node-id", &id.to_string()])
            .args(["--port", &self.members[id - 1].client.to_string()])
            .arg("--cluster-conf")
            .arg(&self.conf)
            .arg("--data-dir")
            .arg(&data)
            .args(["--heartbeat-interval-ms", "50"])
            .args(["--failure-timeout-ms", "500"])
            .args(["--request-timeout-ms", "600"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(offset) = offset {
            command
                .env("LD_PRELOAD", FAKETIME_LIB)
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        if self.as_root {
            command.uid(Self::uid(id)).gid(Self::uid(id));
        }
        let mut child = command.spawn().expect("spawn dkv-node");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr(id)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("dkv-node {id} exited early: {status}");
            }
            assert!(Instant::now() < deadline, "dkv-node {id} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.nodes[id - 1] = Some(child);
    }

    pub fn signal(&self, id: usize, signal: i32) {
        if let Some(child) = &self.nodes[id - 1] {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }

    pub fn kill(&mut self, id: usize) {
        if let Some(mut child) = self.nodes[id - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn info(&self, id: usize) -> String {
        let options = ClientOptions {
            timeout: Duration::from_secs(2),
            ..ClientOptions::default()
        };
        let Ok(mut client) = Client::connect(&[self.addr(id)], options) else {
            return String::new();
        };
        client
            .status(None)
            .map(|s| format!("{s:?}"))
            .unwrap_or_default()
    }

    /// Waits (20 s at most) until every running node has both links up.
    pub fn wait_until_connected(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for id in 1..=self.members.len() {
            if self.nodes[id - 1].is_none() {
                continue;
            }
            loop {
                let options = ClientOptions {
                    timeout: Duration::from_secs(2),
                    ..ClientOptions::default()
                };
                let up = Client::connect(&[self.addr(id)], options)
                    .and_then(|mut c| c.status(None))
                    .is_ok_and(|s| s.peers.iter().all(|p| p.up && p.connected));
                if up {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {id} never saw its peers: {}",
                    self.info(id)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 1..=self.nodes.len() {
            self.signal(id, libc::SIGCONT);
            self.kill(id);
        }
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}
