//! The commands about the connection and the node rather than the data:
//! `PING`, `ECHO`, `AUTH`, `HELLO`, `SELECT`, `QUIT`, `CLIENT`,
//! `CONSISTENCY`, `COMMAND`, `CONFIG`, `INFO`, `DBSIZE` and `DKV.LOCAL`
//! (this node's own copy of a key, read without coordinating). They
//! answer at once, from the session, the settings and the node's state.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::command::executor::Executed;
use crate::command::info;
use crate::command::parse::{
    ClientRequest, Command, CommandQuery, ConfigRequest, ConsistencyRequest, Hello,
};
use crate::command::session::Session;
use crate::command::settings::{ServerStats, Settings};
use crate::command::table::{self, Spec};
use crate::engine::Entry;
use crate::glob::glob_match;
use crate::node::{Disk, Node, Now};
use crate::resp::reply;
use crate::version::NodeId;
use crate::wal::FsyncMode;

/// What the commands here read.
pub(crate) struct Context<'a, D: Disk> {
    pub node: &'a Node<D>,
    pub settings: &'a Settings,
    pub stats: &'a ServerStats,
    /// Whether this node's link to each peer is up.
    pub links: &'a BTreeMap<NodeId, bool>,
    /// Per-command counters.
    pub command_stats: &'a crate::command::stats::CommandStats,
    pub now: Now,
}

fn error(out: &mut Vec<u8>, line: &str) {
    reply::error_line(out, line);
}

/// Runs a command that is not a data command.
pub(crate) fn run<D: Disk>(
    context: &Context<'_, D>,
    session: &mut Session,
    command: Command<'_>,
    out: &mut Vec<u8>,
) -> Executed {
    match command {
        Command::Ping { message: None } => reply::simple(out, "PONG"),
        Command::Ping {
            message: Some(message),
        }
        | Command::Echo { message } => reply::bulk(out, message),
        Command::Time => {
            // This node's wall clock, as Redis answers: seconds and the
            // microseconds past them, as bulk strings.
            let micros = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            reply::array(out, 2);
            reply::bulk(out, (micros / 1_000_000).to_string().as_bytes());
            reply::bulk(out, (micros % 1_000_000).to_string().as_bytes());
        }
        Command::Local { key } => match context
            .node
            .disk()
            .get(key)
            .and_then(Entry::into_readable_value)
        {
            Some(value) => reply::bulk(out, &value),
            None => reply::null(out, session.resp3()),
        },
        Command::Info { sections } => {
            let text = info::render(context, sections.iter());
            reply::bulk(out, text.as_bytes());
        }
        Command::Auth { user, password } => {
            match check_password(context.settings, user, password) {
                Ok(()) => {
                    session.authenticated = true;
                    reply::ok(out);
                }
                Err(e) => error(out, e),
            }
        }
        Command::Hello(hello) => self::hello(context.settings, session, hello, out),
        Command::Select => reply::ok(out),
        Command::Quit => {
            reply::ok(out);
            return Executed::Close;
        }
        Command::Command(query) => command_info(query, out),
        Command::Config(request) => config(context, session, request, out),
        Command::Client(request) => client(session, request, out),
        Command::Consistency(levels) => consistency(context.settings, session, levels, out),
        Command::Watch => error(
            out,
            "ERR WATCH is not supported by dkv: its transactions are batches, not isolated (see docs/commands.md)",
        ),
        Command::Unwatch => reply::ok(out),
        Command::Get { .. }
        | Command::Add { .. }
        | Command::Program(_)
        | Command::DbSize
        | Command::Flush
        | Command::Scan { .. }
        | Command::Keys { .. }
        | Command::RandomKey
        | Command::Multi
        | Command::Exec
        | Command::Discard
        | Command::Set { .. }
        | Command::Del { .. }
        | Command::Exists { .. }
        | Command::MGet { .. }
        | Command::MSet { .. } => {
            debug_assert!(false, "data commands go through the node");
            error(
                out,
                "ERR internal error: a data command reached the wrong handler",
            );
        }
    }
    Executed::Answered
}

fn check_password(
    settings: &Settings,
    user: Option<&[u8]>,
    password: &[u8],
) -> Result<(), &'static str> {
    match &settings.requirepass {
        None => Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
        Some(expected)
            if user.is_none_or(|u| u == b"default")
                && crate::peer::secrets_match(expected.as_bytes(), password) =>
        {
            Ok(())
        }
        Some(_) => Err("WRONGPASS invalid username-password pair or user is disabled."),
    }
}

fn hello(settings: &Settings, session: &mut Session, hello: Hello<'_>, out: &mut Vec<u8>) {
    if let Some((user, password)) = hello.auth {
        if let Err(e) = check_password(settings, Some(user), password) {
            return error(out, e);
        }
        session.authenticated = true;
    }
    if !session.authenticated {
        return error(out, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = hello.name {
        if let Err(e) = set_name(session, name) {
            return error(out, e);
        }
    }
    if let Some(protocol) = hello.protocol {
        session.protocol = protocol;
    }
    // A map in RESP3, a flat array of pairs in RESP2, as Redis replies.
    reply::map(out, 7, session.resp3());
    reply::bulk(out, b"server");
    reply::bulk(out, b"redis");
    // Clients that gate features on the server version see a modern
    // Redis; INFO reports dkv's own version too.
    reply::bulk(out, b"version");
    reply::bulk(out, b"7.0.0");
    reply::bulk(out, b"proto");
    reply::integer(out, i64::from(session.protocol));
    reply::bulk(out, b"id");
    reply::integer(out, session.id() as i64);
    reply::bulk(out, b"mode");
    reply::bulk(out, b"standalone");
    reply::bulk(out, b"role");
    reply::bulk(out, b"master");
    reply::bulk(out, b"modules");
    reply::array(out, 0);
}

/// `CONSISTENCY` shows the connection's levels; with levels it sets them,
/// refusing a count above N.
fn consistency(
    settings: &Settings,
    session: &mut Session,
    levels: ConsistencyRequest,
    out: &mut Vec<u8>,
) {
    let n = settings.cluster.replication_factor;
    for level in [levels.read, levels.write].into_iter().flatten() {
        if let crate::node::Consistency::Count(k) = level {
            if k > n {
                return error(
                    out,
                    &format!("ERR consistency {k} is more than the {n} replicas"),
                );
            }
        }
    }
    if levels.read.is_none() && levels.write.is_none() {
        reply::array(out, 4);
        reply::bulk(out, b"read");
        reply::bulk(out, session.read_consistency.name().as_bytes());
        reply::bulk(out, b"write");
        reply::bulk(out, session.write_consistency.name().as_bytes());
        return;
    }
    if let Some(read) = levels.read {
        session.read_consistency = read;
    }
    if let Some(write) = levels.write {
        session.write_consistency = write;
    }
    reply::ok(out);
}

fn command_info(query: CommandQuery<'_>, out: &mut Vec<u8>) {
    match query {
        CommandQuery::All => {
            reply::array(out, table::TABLE.len());
            for spec in table::TABLE {
                write_spec(out, spec);
            }
        }
        CommandQuery::Count => reply::integer(out, table::TABLE.len() as i64),
        // redis-cli asks for docs to show hints; having none is fine.
        CommandQuery::Docs => reply::array(out, 0),
        CommandQuery::Info(names) => {
            reply::array(out, names.len());
            for name in names.iter() {
                match table::lookup(&name.to_ascii_lowercase()) {
                    Some(spec) => write_spec(out, spec),
                    None => reply::null_array(out),
                }
            }
        }
    }
}

fn write_spec(out: &mut Vec<u8>, spec: &Spec) {
    reply::array(out, 6);
    reply::bulk(out, spec.text.as_bytes());
    reply::integer(out, spec.arity);
    reply::array(out, spec.flags.len());
    for flag in spec.flags {
        reply::simple(out, flag);
    }
    reply::integer(out, spec.first_key);
    reply::integer(out, spec.last_key);
    reply::integer(out, spec.step);
}

fn config<D: Disk>(
    context: &Context<'_, D>,
    session: &Session,
    request: ConfigRequest<'_>,
    out: &mut Vec<u8>,
) {
    match request {
        ConfigRequest::Get(patterns) => {
            let params = config_params(context.settings);
            let mut matched: Vec<&(&str, String)> = Vec::new();
            for pattern in patterns.iter() {
                let pattern = pattern.to_ascii_lowercase();
                for param in &params {
                    if glob_match(&pattern, param.0.as_bytes())
                        && !matched.iter().any(|m| m.0 == param.0)
                    {
                        matched.push(param);
                    }
                }
            }
            reply::map(out, matched.len(), session.resp3());
            for (name, value) in matched {
                reply::bulk(out, name.as_bytes());
                reply::bulk(out, value.as_bytes());
            }
        }
        ConfigRequest::Set => error(
            out,
            "ERR CONFIG SET is not supported by dkv; use dkv-node flags",
        ),
        ConfigRequest::ResetStat => {
            context.stats.commands.store(0, Ordering::Relaxed);
            reply::ok(out);
        }
    }
}

/// The parameters `CONFIG GET` knows: enough for redis-benchmark and
/// client libraries that ask before they start.
fn config_params(settings: &Settings) -> Vec<(&'static str, String)> {
    let fsync = settings.fsync;
    vec![
        ("save", String::new()),
        (
            "appendonly",
            if fsync == FsyncMode::Never {
                "no"
            } else {
                "yes"
            }
            .into(),
        ),
        (
            "appendfsync",
            match fsync {
                FsyncMode::Always => "always",
                FsyncMode::Periodic(_) => "everysec",
                FsyncMode::Never => "no",
            }
            .into(),
        ),
        ("databases", "1".into()),
        ("maxmemory", "0".into()),
        ("port", settings.port.to_string()),
        ("bind", settings.bind.to_string()),
        ("io-threads", "1".into()),
        (
            "proto-max-bulk-len",
            settings.limits.max_bulk_len.to_string(),
        ),
    ]
}

/// Names the connection as Redis does: printable ASCII without spaces
/// (`!` to `~`); an empty name clears it.
fn set_name(session: &mut Session, name: &[u8]) -> Result<(), &'static str> {
    if !name.iter().all(|byte| (b'!'..=b'~').contains(byte)) {
        return Err("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    session.name = (!name.is_empty()).then(|| name.to_vec());
    Ok(())
}

fn client(session: &mut Session, request: ClientRequest<'_>, out: &mut Vec<u8>) {
    match request {
        ClientRequest::SetName(name) => match set_name(session, name) {
            Ok(()) => reply::ok(out),
            Err(e) => error(out, e),
        },
        ClientRequest::GetName => match &session.name {
            Some(name) => reply::bulk(out, name),
            None => reply::null(out, session.resp3()),
        },
        ClientRequest::Id => reply::integer(out, session.id() as i64),
        // Client libraries announce themselves; accept and ignore.
        ClientRequest::SetInfo => reply::ok(out),
    }
}
