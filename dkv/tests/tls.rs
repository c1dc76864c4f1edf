//! TLS on the client and peer ports, over real loopback sockets: a
//! certificate authority and certificates made with `openssl` for the
//! test, clients speaking rustls (and `redis-cli --tls`, as Redis's users
//! would), a 3-node cluster whose peer links run over mutually verified
//! TLS, and clients refused for lacking a certificate when one is asked.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::free_port;
use dkv::config::ClusterConf;
use dkv::server::{self, Server, ServerConfig, TlsFiles};
use dkv::wal::FsyncMode;
use dkv::NodeId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A CA, a node certificate for 127.0.0.1 and a client certificate,
    /// all signed by it (EC P-256, valid two days).
    fn make() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=dkv test CA",
            ],
        ]
        .concat());
        std::fs::write(
            dir.path().join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        for name in ["node", "client"] {
            let key = format!("{name}.key");
            let csr = format!("{name}.csr");
            let crt = format!("{name}.crt");
            run(&[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN=dkv {name}"),
                ],
            ]
            .concat());
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ]);
        }
        Certs { dir }
    }

    fn files(&self, auth_clients: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("node.crt"),
            key: self.path("node.key"),
            ca: Some(self.path("ca.crt")),
            auth_clients,
        }
    }
}

/// A blocking RESP client over rustls, trusting the test CA (with the
/// client certificate when `with_cert`).
struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl TlsClient {
    fn connect(addr: SocketAddr, certs: &Certs, with_cert: bool) -> std::io::Result<TlsClient> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(certs.path("ca.crt")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = if with_cert {
            let chain: Vec<_> = CertificateDer::pem_file_iter(certs.path("client.crt"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(certs.path("client.key")).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        let name = ServerName::IpAddress(addr.ip().into());
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let socket = TcpStream::connect(addr)?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut stream = rustls::StreamOwned::new(conn, socket);
        // Finish the handshake now, so a refusal shows here.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsClient { stream })
    }

    /// Sends a command, returns the reply's first line (and a bulk's data).
    fn cmd(&mut self, args: &[&str]) -> std::io::Result<String> {
        let mut wire = format!("*{}\r\n", args.len());
        for arg in args {
            wire.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.stream.write_all(wire.as_bytes())?;
        let mut reader = BufReader::new(&mut self.stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if let Some(len) = line
            .strip_prefix('$')
            .and_then(|l| l.trim().parse::<usize>().ok())
        {
            let mut data = vec![0u8; len + 2];
            reader.read_exact(&mut data)?;
            return Ok(String::from_utf8_lossy(&data[..len]).into_owned());
        }
        Ok(line.trim_end().to_string())
    }
}

fn single_node(dir: &Path, certs: &Certs, auth_clients: bool) -> Server {
    let mut config = ServerConfig::new(NodeId(1), 0, dir);
    config.store.fsync = FsyncMode::Never;
    config.tls = Some(certs.files(auth_clients));
    server::start(config).expect("node starts")
}

#[test]
fn clients_speak_tls_and_plain_text_gets_nowhere() {
    let certs = Certs::make();
    let dir = tempfile::tempdir().unwrap();
    let node = single_node(dir.path(), &certs, false);
    let mut client = TlsClient::connect(node.client_addr(), &certs, false).unwrap();
    assert_eq!(client.cmd(&["SET", "k", "over tls"]).unwrap(), "+OK");
    assert_eq!(client.cmd(&["GET", "k"]).unwrap(), "over tls");
    // A pipeline bigger than one TLS record comes back whole.
    let big = "x".repeat(100_000);
    assert_eq!(client.cmd(&["SET", "big", &big]).unwrap(), "+OK");
    assert_eq!(client.cmd(&["GET", "big"]).unwrap().len(), big.len());

    // Plain RESP to the TLS port: no reply, the connection ends.
    let mut plain = TcpStream::connect(node.client_addr()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut buf = [0u8; 64];
    let got = plain.read(&mut buf).unwrap_or(0);
    assert!(!buf[..got].starts_with(b"+PONG"), "plain text answered");

    // redis-cli --tls, as a Redis user would connect.
    let redis_cli = Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(certs.path("ca.crt"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &node.client_addr().port().to_string(),
            "GET",
            "k",
        ])
        .output();
    match redis_cli {
        Ok(out) => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "over tls"),
        Err(e) => eprintln!("redis-cli not installed ({e}); make test installs it"),
    }
}

#[test]
fn with_auth_clients_a_client_needs_a_certificate() {
    let certs = Certs::make();
    let dir = tempfile::tempdir().unwrap();
    let node = single_node(dir.path(), &certs, true);
    let refused =
        TlsClient::connect(node.client_addr(), &certs, false).and_then(|mut c| c.cmd(&["PING"]));
    assert!(
        refused.is_err(),
        "a client without a certificate got {refused:?}"
    );
    let mut client = TlsClient::connect(node.client_addr(), &certs, true).unwrap();
    assert_eq!(client.cmd(&["PING"]).unwrap(), "+PONG");
}

#[test]
fn a_cluster_replicates_over_verified_tls_links() {
    let certs = Certs::make();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let mut text = String::from(
        "cluster_name = tls\nreplication_factor = 3\nwrite_quorum = 2\nread_quorum = 2\n",
    );
    for (i, (client, peer)) in ports.iter().enumerate() {
        text.push_str(&format!("node {} 127.0.0.1:{client} {peer}\n", i + 1));
    }
    let conf = ClusterConf::parse(&text).unwrap();
    let nodes: Vec<Server> = (0..3)
        .map(|i| {
            let mut config = ServerConfig::new(NodeId(i as u32 + 1), ports[i].0, dirs[i].path());
            config.cluster = conf.clone();
            config.store.fsync = FsyncMode::Never;
            config.cluster_secret = "tls cluster secret".into();
            config.tls = Some(certs.files(false));
            config.replication.heartbeat_interval = Duration::from_millis(50);
            server::start(config).expect("node starts")
        })
        .collect();
    let mut first = TlsClient::connect(nodes[0].client_addr(), &certs, false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while first.cmd(&["SET", "k", "replicated"]).unwrap() != "+OK" {
        assert!(
            Instant::now() < deadline,
            "the TLS cluster never took a quorum write"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // W=2 acknowledges before the third replica has applied, so each
    // replica is given until the deadline to hold its copy.
    for node in &nodes[1..] {
        let mut c = TlsClient::connect(node.client_addr(), &certs, false).unwrap();
        while c.cmd(&["DKV.LOCAL", "k"]).unwrap() != "replicated" {
            assert!(
                Instant::now() < deadline,
                "a replica never received the write over TLS"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(c.cmd(&["GET", "k"]).unwrap(), "replicated");
    }
}

#[test]
fn bad_tls_files_stop_the_node_with_a_reason() {
    let certs = Certs::make();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(NodeId(1), 0, dir.path());
    config.tls = Some(TlsFiles {
        key: certs.path("missing.key"),
        ..certs.files(false)
    });
    let err = server::start(config)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("missing.key"), "{err}");
}
