//! Test helpers: a minimal blocking RESP2 client and node launchers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A RESP2 reply as the test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
    NilArray,
}

impl Reply {
    pub fn bulk(bytes: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(bytes.as_ref().to_vec())
    }

    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    pub fn is_error_starting(&self, prefix: &str) -> bool {
        matches!(self, Reply::Error(e) if e.starts_with(prefix))
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    pub fn encode(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.send_raw(&Self::encode(args));
        self.read_reply().expect("reply")
    }

    pub fn cmd_str(&mut self, line: &str) -> Reply {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        self.cmd(&args)
    }

    /// Reads one reply; `None` when the server closed the connection.
    pub fn read_reply(&mut self) -> Option<Reply> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        Some(match kind {
            "+" => Reply::Simple(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Integer(rest.parse().unwrap()),
            "$" => {
                let len: i64 = rest.parse().unwrap();
                if len < 0 {
                    Reply::Nil
                } else {
                    let mut body = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut body).ok()?;
                    body.truncate(len as usize);
                    Reply::Bulk(body)
                }
            }
            "_" => Reply::Nil,
            "%" => {
                // A RESP3 map, flattened into key, value, key, value...
                let len: usize = rest.parse().unwrap();
                let mut items = Vec::new();
                for _ in 0..2 * len {
                    items.push(self.read_reply()?);
                }
                Reply::Array(items)
            }
            "*" => {
                let len: i64 = rest.parse().unwrap();
                if len < 0 {
                    Reply::NilArray
                } else {
                    let mut items = Vec::new();
                    for _ in 0..len {
                        items.push(self.read_reply()?);
                    }
                    Reply::Array(items)
                }
            }
            other => panic!("bad reply type {other:?} in {line:?}"),
        })
    }

    /// True once the server has closed the connection.
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0) | Err(_))
    }
}

/// A `dkv-node` child process, killed when dropped.
pub struct NodeProcess {
    pub child: std::process::Child,
    pub port: u16,
}

/// A port that was free a moment ago, picked below the kernel's ephemeral
/// range (32768-60999 here) so that no outgoing connection of a parallel
/// test (peer links, clients) can take it before the node binds it, and
/// from a sequence per process so that parallel tests never pick the same.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id().wrapping_mul(7919);
    for _ in 0..12_000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (base.wrapping_add(n.wrapping_mul(13)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}
impl NodeProcess {
    /// Starts `dkv-node` with `args` plus `--port` and waits (up to 10 s)
    /// until it accepts connections.
    pub fn start(port: u16, args: &[&str]) -> NodeProcess {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_dkv-node"))
            .args(["--port", &port.to_string()])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn dkv-node");
        let mut node = NodeProcess { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(node.addr()).is_err() {
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("dkv-node exited early: {status}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dkv-node did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        node
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits up to 20 s for the process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dkv-node did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
