//! One corpus of commands and expected replies (`tests/corpus/commands.txt`,
//! its format at its top), run over real sockets against a node alone and
//! against a 3-node cluster (N=3, W=2, R=2) started in this process. Both
//! run the one command layer and the one replication core, so both must
//! answer every line alike, errors included.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{free_port, Client, Reply};
use dkv::config::{ClusterConf, NodeAddr};
use dkv::server::{self, Server, ServerConfig};
use dkv::NodeId;

const PASSWORD: &str = "s3cret";

/// A node alone, or a cluster, with its client addresses.
struct Target {
    name: &'static str,
    replicas: usize,
    addrs: Vec<SocketAddr>,
    _servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

fn single() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(NodeId(1), 0, dir.path());
    config.requirepass = Some(PASSWORD.into());
    let server = server::start(config).expect("node starts");
    Target {
        name: "a node alone",
        replicas: 1,
        addrs: vec![server.client_addr()],
        _servers: vec![server],
        _dir: dir,
    }
}

fn cluster() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let mut conf = ClusterConf {
        cluster_name: "corpus".into(),
        ..ClusterConf::default()
    };
    for id in 1..=3 {
        conf.nodes.push(NodeAddr {
            id: NodeId(id),
            client: SocketAddr::from(([127, 0, 0, 1], free_port())),
            peer: SocketAddr::from(([127, 0, 0, 1], free_port())),
        });
    }
    conf.validate().unwrap();
    let mut servers = Vec::new();
    for member in &conf.nodes {
        let mut config = ServerConfig::new(
            member.id,
            member.client.port(),
            dir.path().join(format!("node-{}", member.id)),
        );
        config.requirepass = Some(PASSWORD.into());
        config.cluster = conf.clone();
        config.replication.heartbeat_interval = Duration::from_millis(50);
        config.replication.failure_timeout = Duration::from_millis(1000);
        servers.push(server::start(config).expect("node starts"));
    }
    let addrs: Vec<SocketAddr> = conf.nodes.iter().map(|n| n.client).collect();
    // Every node sees both peers up and linked before the corpus runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    for &addr in &addrs {
        let mut c = Client::connect(addr);
        assert_eq!(c.cmd_str(&format!("AUTH {PASSWORD}")), Reply::ok());
        loop {
            let Reply::Bulk(info) = c.cmd_str("INFO cluster") else {
                panic!("INFO cluster")
            };
            let info = String::from_utf8_lossy(&info);
            if info.matches(":up,connected").count() == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "cluster never formed:\n{info}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Target {
        name: "a 3-node cluster",
        replicas: 3,
        addrs,
        _servers: servers,
        _dir: dir,
    }
}

/// One argument or expected text, with the corpus's escapes.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'x' if i + 3 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).expect("\\xNN"));
                    i += 2;
                }
                other => out.push(other),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Splits a command line on spaces, with "..." quoting.
fn split_command(line: &str) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let mut end = start + 1;
            let mut escaped = false;
            for (i, c) in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    end = i;
                    break;
                }
            }
            args.push(unescape(&line[start + 1..end]));
        } else {
            let mut end = line.len();
            while let Some(&(i, c)) = chars.peek() {
                if c == ' ' {
                    end = i;
                    break;
                }
                chars.next();
            }
            args.push(unescape(&line[start..end]));
        }
    }
    args
}

/// An expected reply.
#[derive(Debug, Clone)]
enum Expect {
    Anything,
    Simple(String),
    Error { text: String, prefix: bool },
    Integer(Option<i64>),
    Bulk(Option<Vec<u8>>),
    Nil,
    NilArray,
    Array(Vec<Expect>),
}

/// Parses one expectation from the front of `text`; returns it and the rest.
fn parse_expect(text: &str) -> (Expect, &str) {
    parse_item(text, false)
}

fn parse_item(text: &str, in_array: bool) -> (Expect, &str) {
    let text = text.trim_start();
    if let Some(mut rest) = text.strip_prefix('[') {
        let mut items = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix(']') {
                return (Expect::Array(items), after);
            }
            let (item, after) = parse_item(rest, true);
            items.push(item);
            rest = after.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    // A scalar runs to the next ',' or ']' inside an array; to the end of
    // the line outside one (error lines may hold commas and brackets).
    let end_in_array = text.find([',', ']']).unwrap_or(text.len());
    let (token, rest) = match text.as_bytes().first() {
        Some(b'-' | b'+') if !in_array => (text, ""),
        _ => (&text[..end_in_array], &text[end_in_array..]),
    };
    assert!(!token.is_empty(), "an empty expectation");
    let token = token.trim_end();
    let expect = match token {
        "*" => Expect::Anything,
        "nil" => Expect::Nil,
        "null" => Expect::Nil,
        "nilarray" => Expect::NilArray,
        ":*" => Expect::Integer(None),
        "$*" => Expect::Bulk(None),
        _ => match token.split_at(1) {
            ("+", s) => Expect::Simple(s.to_string()),
            ("-", s) => match s.strip_suffix('*') {
                Some(p) => Expect::Error {
                    text: p.to_string(),
                    prefix: true,
                },
                None => Expect::Error {
                    text: s.to_string(),
                    prefix: false,
                },
            },
            (":", n) => Expect::Integer(Some(n.parse().expect("an integer"))),
            ("$", s) => Expect::Bulk(Some(unescape(s))),
            _ => panic!("bad expectation {token:?}"),
        },
    };
    (expect, rest)
}

fn matches(expect: &Expect, reply: &Reply) -> bool {
    match (expect, reply) {
        (Expect::Anything, _) => true,
        (Expect::Simple(s), Reply::Simple(r)) => s == r,
        (Expect::Error { text, prefix }, Reply::Error(r)) => {
            if *prefix {
                r.starts_with(text.as_str())
            } else {
                r == text
            }
        }
        (Expect::Integer(n), Reply::Integer(r)) => n.is_none_or(|n| n == *r),
        (Expect::Bulk(b), Reply::Bulk(r)) => b.as_ref().is_none_or(|b| b == r),
        (Expect::Nil, Reply::Nil) | (Expect::NilArray, Reply::NilArray) => true,
        (Expect::Array(items), Reply::Array(replies)) => {
            items.len() == replies.len() && items.iter().zip(replies).all(|(e, r)| matches(e, r))
        }
        _ => false,
    }
}

/// Runs the whole corpus against `target`; returns every mismatch.
fn run_corpus(target: &Target) -> (usize, Vec<String>) {
    let corpus = include_str!("corpus/commands.txt");
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut conn: Option<Client> = None;
    let mut section = String::new();
    let connect = |node: usize, authenticate: bool| {
        let addr = target.addrs[(node - 1).min(target.addrs.len() - 1)];
        let mut c = Client::connect(addr);
        if authenticate {
            assert_eq!(c.cmd_str(&format!("AUTH {PASSWORD}")), Reply::ok());
        }
        c
    };
    for (number, line) in corpus.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') && !line.starts_with("##") {
            continue;
        }
        if let Some(header) = line.strip_prefix("## ") {
            let anonymous = header.ends_with("!anon");
            section = header.trim_end_matches("!anon").trim().to_string();
            conn = Some(connect(1, !anonymous));
            continue;
        }
        if let Some(node) = line.strip_prefix('@') {
            conn = Some(connect(node.parse().expect("@N"), true));
            continue;
        }
        let Some(case) = line.strip_prefix("> ") else {
            panic!("line {}: not a case: {line:?}", number + 1);
        };
        let (command, expected) = case
            .split_once(" => ")
            .unwrap_or_else(|| panic!("line {}: no ' => '", number + 1));
        let expected = expected.replace("{N}", &target.replicas.to_string());
        let (expect, rest) = parse_expect(&expected);
        assert!(
            rest.trim().is_empty(),
            "line {}: trailing {rest:?}",
            number + 1
        );
        let args = split_command(command);
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let client = conn.as_mut().expect("a section header first");
        let reply = client.cmd(&refs);
        checked += 1;
        if !matches(&expect, &reply) {
            failures.push(format!(
                "{} [{section}] line {}: {command}\n    expected {expected}\n    got      {reply:?}",
                target.name,
                number + 1
            ));
        }
    }
    (checked, failures)
}

#[test]
fn a_node_alone_and_a_cluster_answer_the_corpus_alike() {
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for target in [single(), cluster()] {
        let (checked, mut problems) = run_corpus(&target);
        summary.push(format!("{}: {checked} commands", target.name));
        failures.append(&mut problems);
    }
    println!("corpus: {}", summary.join(", "));
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_corpus_parser_reads_its_own_notation() {
    assert_eq!(
        split_command(r#"SET "a b" "\x00\r\n" c"#),
        vec![
            b"SET".to_vec(),
            b"a b".to_vec(),
            b"\x00\r\n".to_vec(),
            b"c".to_vec()
        ]
    );
    let (e, rest) = parse_expect("[$a, nil, [:1, :*], $]");
    assert!(rest.is_empty());
    let reply = Reply::Array(vec![
        Reply::bulk("a"),
        Reply::Nil,
        Reply::Array(vec![Reply::Integer(1), Reply::Integer(7)]),
        Reply::bulk(""),
    ]);
    assert!(matches(&e, &reply));
    let (e, _) = parse_expect("-ERR x, y [z]*");
    assert!(matches(&e, &Reply::Error("ERR x, y [z] and more".into())));
    assert!(!matches(&e, &Reply::Error("ERR other".into())));
}
