//! The Redis commands dkv answers, executed against the [`Store`].
//!
//! [`Executor::execute`] runs one command and appends its RESP2 reply to
//! the connection's output. Writes do not wait for the disk here: they
//! report the WAL sequence their reply must wait for in an [`Effect`], and
//! the reactor holds the reply until that sequence is durable. This is the
//! seam where the cluster's coordinator slots in: a command whose answer
//! comes later reports what it waits for, the reactor does the waiting.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::node::Consistency;
use crate::resp::reply;
use crate::server::info;
use crate::server::session::Session;
use crate::server::{ServerConfig, ServerStats};
use crate::store::Store;
use crate::wal::{FsyncMode, Lsn};

/// What a batch of commands asks of the reactor beyond its replies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    /// Hold the replies until the WAL is durable up to here.
    pub durable_lsn: Option<Lsn>,
    /// Close the connection once the replies are sent (QUIT).
    pub close: bool,
}

impl Effect {
    fn wait_for(&mut self, lsn: Lsn) {
        self.durable_lsn = Some(self.durable_lsn.map_or(lsn, |l| l.max(lsn)));
    }
}

/// Runs commands for every connection of one node.
pub struct Executor {
    pub(crate) store: Arc<Store>,
    pub(crate) config: ServerConfig,
    pub(crate) stats: Arc<ServerStats>,
    /// The replication core's state, in a multi-node cluster.
    pub(crate) cluster_status: Option<Arc<parking_lot::Mutex<crate::server::ClusterStatus>>>,
}

/// Commands a connection may send before it authenticates.
const ALLOWED_UNAUTHENTICATED: &[&str] = &["auth", "hello", "quit"];

/// `(name, arity, flags)` as `COMMAND` reports them; negative arity means
/// "at least".
pub(crate) const COMMAND_TABLE: &[(&str, i64, &[&str])] = &[
    (
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth"],
    ),
    ("client", -2, &["admin", "noscript", "loading", "stale"]),
    ("command", -1, &["random", "loading", "stale"]),
    ("config", -2, &["admin", "noscript", "loading", "stale"]),
    ("consistency", -1, &["fast"]),
    ("dkv.local", 2, &["readonly", "fast"]),
    ("dbsize", 1, &["readonly", "fast"]),
    ("del", -2, &["write"]),
    ("echo", 2, &["fast"]),
    ("exists", -2, &["readonly", "fast"]),
    ("get", 2, &["readonly", "fast"]),
    (
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
    ),
    ("info", -1, &["random", "loading", "stale"]),
    ("mget", -2, &["readonly", "fast"]),
    ("mset", -3, &["write", "denyoom"]),
    ("ping", -1, &["fast", "stale"]),
    ("quit", -1, &["loading", "stale", "fast", "no_auth"]),
    ("select", 2, &["loading", "stale", "fast"]),
    ("set", -3, &["write", "denyoom"]),
];

fn arity_ok(name: &str, argc: usize) -> bool {
    match COMMAND_TABLE.iter().find(|(n, _, _)| *n == name) {
        Some((_, arity, _)) if *arity >= 0 => argc == *arity as usize,
        Some((_, arity, _)) => argc >= arity.unsigned_abs() as usize,
        None => true,
    }
}

impl Executor {
    fn durable_writes(&self) -> bool {
        self.store.config().fsync == FsyncMode::Always
    }

    /// Runs one command (`args[0]` is its name) and appends the reply.
    pub fn execute(
        &self,
        session: &mut Session,
        args: &[&[u8]],
        out: &mut Vec<u8>,
        effect: &mut Effect,
    ) {
        self.stats.commands.fetch_add(1, Ordering::Relaxed);
        let Some(first) = args.first() else {
            return;
        };
        // Command names are short ASCII: lower-case them on the stack.
        let mut lowered = [0u8; 16];
        let owned;
        let name: &str = match lowered.get_mut(..first.len()) {
            Some(buf) => {
                buf.copy_from_slice(first);
                buf.make_ascii_lowercase();
                std::str::from_utf8(buf).unwrap_or("")
            }
            None => {
                owned = String::from_utf8_lossy(first).to_ascii_lowercase();
                &owned
            }
        };
        if !session.authenticated && !ALLOWED_UNAUTHENTICATED.contains(&name) {
            error(out, "NOAUTH Authentication required.");
            return;
        }
        if !arity_ok(name, args.len()) {
            error(
                out,
                &format!("ERR wrong number of arguments for '{name}' command"),
            );
            return;
        }
        match name {
            "ping" => match args.get(1) {
                None => reply::simple(out, "PONG"),
                Some(msg) if args.len() == 2 => reply::bulk(out, msg),
                Some(_) => error(out, "ERR wrong number of arguments for 'ping' command"),
            },
            "echo" => reply::bulk(out, args[1]),
            "get" => match self.store.get(args[1]) {
                Some(value) => reply::bulk(out, &value),
                None => null(session, out),
            },
            "set" => self.set(args, out, effect),
            "del" => self.del(args, out, effect),
            "exists" => {
                let count = args[1..]
                    .iter()
                    .filter(|k| self.store.get_entry(k).is_some_and(|e| !e.is_tombstone()))
                    .count();
                reply::integer(out, count as i64);
            }
            "mget" => {
                reply::array(out, args.len() - 1);
                for key in &args[1..] {
                    match self.store.get(key) {
                        Some(value) => reply::bulk(out, &value),
                        None => null(session, out),
                    }
                }
            }
            "mset" => self.mset(args, out, effect),
            "dbsize" => reply::integer(out, self.store.engine().len() as i64),
            "info" => {
                let text = info::render(self, &args[1..]);
                reply::bulk(out, text.as_bytes());
            }
            "auth" => self.auth(session, &args[1..], out),
            "hello" => self.hello(session, &args[1..], out),
            "select" => match args[1] {
                b"0" => reply::simple(out, "OK"),
                _ => error(out, "ERR DB index is out of range"),
            },
            "quit" => {
                reply::simple(out, "OK");
                effect.close = true;
            }
            "command" => self.command(&args[1..], out),
            "config" => self.config_cmd(session, &args[1..], out),
            "client" => self.client(session, &args[1..], out),
            "consistency" => self.consistency(session, &args[1..], out),
            "dkv.local" => match self.store.get(args[1]) {
                Some(value) => reply::bulk(out, &value),
                None => null(session, out),
            },
            _ => {
                let shown: String = String::from_utf8_lossy(first).chars().take(128).collect();
                let mut rest = String::new();
                for arg in args[1..].iter().take(8) {
                    rest.push_str(&format!(
                        "'{}' ",
                        String::from_utf8_lossy(arg)
                            .chars()
                            .take(64)
                            .collect::<String>()
                    ));
                }
                error(
                    out,
                    &format!("ERR unknown command '{shown}', with args beginning with: {rest}"),
                );
            }
        }
    }

    fn write(&self, key: &[u8], value: Option<&[u8]>, effect: &mut Effect) -> Result<(), String> {
        let submitted = self
            .store
            .submit(key, self.store.stamp(), value)
            .map_err(|e| format!("IOERR {e}"))?;
        if self.durable_writes() {
            effect.wait_for(submitted.lsn);
        }
        Ok(())
    }

    fn set(&self, args: &[&[u8]], out: &mut Vec<u8>, effect: &mut Effect) {
        if let Some(option) = args.get(3) {
            error(out, &set_option_error(option));
            return;
        }
        match self.write(args[1], Some(args[2]), effect) {
            Ok(()) => reply::simple(out, "OK"),
            Err(e) => error(out, &e),
        }
    }

    fn del(&self, args: &[&[u8]], out: &mut Vec<u8>, effect: &mut Effect) {
        let mut deleted = 0;
        for key in &args[1..] {
            if self.store.get_entry(key).is_none_or(|e| e.is_tombstone()) {
                continue;
            }
            if let Err(e) = self.write(key, None, effect) {
                error(out, &e);
                return;
            }
            deleted += 1;
        }
        reply::integer(out, deleted);
    }

    fn mset(&self, args: &[&[u8]], out: &mut Vec<u8>, effect: &mut Effect) {
        if args.len() % 2 != 1 {
            error(out, "ERR wrong number of arguments for 'mset' command");
            return;
        }
        for pair in args[1..].chunks_exact(2) {
            if let Err(e) = self.write(pair[0], Some(pair[1]), effect) {
                error(out, &e);
                return;
            }
        }
        reply::simple(out, "OK");
    }

    fn check_password(&self, user: Option<&[u8]>, password: &[u8]) -> Result<(), &'static str> {
        match &self.config.requirepass {
            None => Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
            Some(expected) if user.is_none_or(|u| u == b"default") && crate::peer::secrets_match(expected.as_bytes(), password) => Ok(()),
            Some(_) => Err("WRONGPASS invalid username-password pair or user is disabled."),
        }
    }

    fn auth(&self, session: &mut Session, args: &[&[u8]], out: &mut Vec<u8>) {
        let result = match args {
            [password] => self.check_password(None, password),
            [user, password] => self.check_password(Some(user), password),
            _ => Err("ERR syntax error"),
        };
        match result {
            Ok(()) => {
                session.authenticated = true;
                reply::simple(out, "OK");
            }
            Err(e) => error(out, e),
        }
    }

    fn hello(&self, session: &mut Session, args: &[&[u8]], out: &mut Vec<u8>) {
        let protocol = match args.first().map(|v| &v[..]) {
            None => session.protocol,
            Some(b"2") => 2,
            Some(b"3") => 3,
            Some(_) => return error(out, "NOPROTO unsupported protocol version"),
        };
        let mut rest = args.iter().skip(1);
        let mut name = None;
        while let Some(option) = rest.next() {
            match option.to_ascii_uppercase().as_slice() {
                b"AUTH" => {
                    let (Some(user), Some(password)) = (rest.next(), rest.next()) else {
                        return error(out, "ERR syntax error in HELLO option 'AUTH'");
                    };
                    if let Err(e) = self.check_password(Some(user), password) {
                        return error(out, e);
                    }
                    session.authenticated = true;
                }
                b"SETNAME" => match rest.next() {
                    Some(n) => name = Some(n.to_vec()),
                    None => return error(out, "ERR syntax error in HELLO option 'SETNAME'"),
                },
                _ => {
                    return error(
                        out,
                        &format!(
                            "ERR syntax error in HELLO option '{}'",
                            String::from_utf8_lossy(option)
                        ),
                    )
                }
            }
        }
        if !session.authenticated {
            return error(out, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        }
        if name.is_some() {
            session.name = name;
        }
        session.protocol = protocol;
        // A map in RESP3, a flat array of pairs in RESP2, as Redis replies.
        reply::map(out, 7, protocol == 3);
        reply::bulk(out, b"server");
        reply::bulk(out, b"redis");
        // Clients that gate features on the server version see a modern
        // Redis; INFO reports dkv's own version too.
        reply::bulk(out, b"version");
        reply::bulk(out, b"7.0.0");
        reply::bulk(out, b"proto");
        reply::integer(out, i64::from(protocol));
        reply::bulk(out, b"id");
        reply::integer(out, session.id as i64);
        reply::bulk(out, b"mode");
        reply::bulk(out, b"standalone");
        reply::bulk(out, b"role");
        reply::bulk(out, b"master");
        reply::bulk(out, b"modules");
        reply::array(out, 0);
    }

    /// `CONSISTENCY` shows the connection's levels; `CONSISTENCY <level>`
    /// sets both; `CONSISTENCY READ <level> WRITE <level>` sets either.
    /// Levels: ONE, QUORUM, ALL or a number of replicas.
    fn consistency(&self, session: &mut Session, args: &[&[u8]], out: &mut Vec<u8>) {
        let n = self.config.cluster.replication_factor;
        let parse = |arg: &[u8]| -> Result<Consistency, String> {
            let text = String::from_utf8_lossy(arg);
            match Consistency::parse(&text) {
                Some(Consistency::Count(k)) if k > n => Err(format!("ERR consistency {k} is more than the {n} replicas")),
                Some(level) => Ok(level),
                None => Err(format!("ERR consistency must be ONE, QUORUM, ALL or a number of replicas, not '{text}'")),
            }
        };
        let result = match args {
            [] => Ok(()),
            [level] => parse(level).map(|level| {
                session.read_consistency = level;
                session.write_consistency = level;
            }),
            _ if args.len() % 2 == 0 => {
                let mut read = session.read_consistency;
                let mut write = session.write_consistency;
                let mut result = Ok(());
                for pair in args.chunks_exact(2) {
                    let level = match parse(pair[1]) {
                        Ok(level) => level,
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    };
                    match pair[0].to_ascii_uppercase().as_slice() {
                        b"READ" => read = level,
                        b"WRITE" => write = level,
                        _ => {
                            result = Err(
                                "ERR syntax: CONSISTENCY [<level> | READ <level> WRITE <level>]"
                                    .into(),
                            );
                            break;
                        }
                    }
                }
                result.map(|()| {
                    session.read_consistency = read;
                    session.write_consistency = write;
                })
            }
            _ => Err("ERR syntax: CONSISTENCY [<level> | READ <level> WRITE <level>]".into()),
        };
        match (result, args.is_empty()) {
            (Err(e), _) => error(out, &e),
            (Ok(()), true) => {
                reply::array(out, 4);
                reply::bulk(out, b"read");
                reply::bulk(out, level_name(session.read_consistency).as_bytes());
                reply::bulk(out, b"write");
                reply::bulk(out, level_name(session.write_consistency).as_bytes());
            }
            (Ok(()), false) => reply::ok(out),
        }
    }

    fn command(&self, args: &[&[u8]], out: &mut Vec<u8>) {
        let sub = args.first().map(|s| s.to_ascii_uppercase());
        match sub.as_deref() {
            None => {
                reply::array(out, COMMAND_TABLE.len());
                for (name, arity, flags) in COMMAND_TABLE {
                    write_command_info(out, name, *arity, flags);
                }
            }
            Some(b"COUNT") => reply::integer(out, COMMAND_TABLE.len() as i64),
            // redis-cli asks for docs to show hints; having none is fine.
            Some(b"DOCS") => reply::array(out, 0),
            Some(b"INFO") => {
                reply::array(out, args.len() - 1);
                for name in &args[1..] {
                    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                    match COMMAND_TABLE.iter().find(|(n, _, _)| *n == name) {
                        Some((n, arity, flags)) => write_command_info(out, n, *arity, flags),
                        None => reply::null_array(out),
                    }
                }
            }
            Some(_) => error(
                out,
                "ERR unknown subcommand for 'command'. Try COMMAND HELP.",
            ),
        }
    }

    fn config_cmd(&self, session: &Session, args: &[&[u8]], out: &mut Vec<u8>) {
        let sub = args.first().map(|s| s.to_ascii_uppercase());
        match (sub.as_deref(), args.len()) {
            (Some(b"GET"), n) if n >= 2 => {
                let params = self.config_params();
                let mut matched = Vec::new();
                for pattern in &args[1..] {
                    for (name, value) in &params {
                        if glob_match(&pattern.to_ascii_lowercase(), name.as_bytes())
                            && !matched.iter().any(|(n, _)| n == name)
                        {
                            matched.push((name.clone(), value.clone()));
                        }
                    }
                }
                reply::map(out, matched.len(), session.protocol == 3);
                for (name, value) in matched {
                    reply::bulk(out, name.as_bytes());
                    reply::bulk(out, value.as_bytes());
                }
            }
            (Some(b"SET"), _) => error(
                out,
                "ERR CONFIG SET is not supported by dkv; use dkv-node flags",
            ),
            (Some(b"RESETSTAT"), 1) => {
                self.stats.commands.store(0, Ordering::Relaxed);
                reply::simple(out, "OK");
            }
            _ => error(
                out,
                "ERR unknown subcommand or wrong number of arguments for 'config'",
            ),
        }
    }

    fn config_params(&self) -> Vec<(String, String)> {
        let fsync = self.store.config().fsync;
        vec![
            ("save".into(), String::new()),
            (
                "appendonly".into(),
                if fsync == FsyncMode::Never {
                    "no"
                } else {
                    "yes"
                }
                .into(),
            ),
            (
                "appendfsync".into(),
                match fsync {
                    FsyncMode::Always => "always",
                    FsyncMode::Periodic(_) => "everysec",
                    FsyncMode::Never => "no",
                }
                .into(),
            ),
            ("databases".into(), "1".into()),
            ("maxmemory".into(), "0".into()),
            ("port".into(), self.config.port.to_string()),
            ("bind".into(), self.config.bind.to_string()),
            (
                "io-threads".into(),
                self.config.worker_threads.max(1).to_string(),
            ),
            (
                "proto-max-bulk-len".into(),
                self.config.limits.max_bulk_len.to_string(),
            ),
        ]
    }

    fn client(&self, session: &mut Session, args: &[&[u8]], out: &mut Vec<u8>) {
        let sub = args
            .first()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        match (sub.as_slice(), args.len()) {
            (b"SETNAME", 2) => {
                session.name = Some(args[1].to_vec());
                reply::simple(out, "OK");
            }
            (b"GETNAME", 1) => match &session.name {
                Some(name) => reply::bulk(out, name),
                None => null(session, out),
            },
            (b"ID", 1) => reply::integer(out, session.id as i64),
            // Client libraries announce themselves; accept and ignore.
            (b"SETINFO", 3) => reply::simple(out, "OK"),
            _ => error(
                out,
                "ERR unknown subcommand or wrong number of arguments for 'client'",
            ),
        }
    }

    /// The store this executor serves.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn write_command_info(out: &mut Vec<u8>, name: &str, arity: i64, flags: &[&str]) {
    let keyed = !matches!(
        name,
        "auth"
            | "client"
            | "command"
            | "config"
            | "dbsize"
            | "echo"
            | "hello"
            | "info"
            | "ping"
            | "quit"
            | "select"
    );
    let step = if name == "mset" { 2 } else { 1 };
    let last = if matches!(name, "get") { 1 } else { -1 };
    reply::array(out, 6);
    reply::bulk(out, name.as_bytes());
    reply::integer(out, arity);
    reply::array(out, flags.len());
    for flag in flags {
        reply::simple(out, flag);
    }
    reply::integer(out, i64::from(keyed));
    reply::integer(out, if keyed { last } else { 0 });
    reply::integer(out, if keyed { step } else { 0 });
}

fn level_name(level: Consistency) -> String {
    match level {
        Consistency::One => "ONE".into(),
        Consistency::Quorum => "QUORUM".into(),
        Consistency::All => "ALL".into(),
        Consistency::Count(k) => k.to_string(),
    }
}

fn null(session: &Session, out: &mut Vec<u8>) {
    reply::null(out, session.protocol == 3);
}

fn error(out: &mut Vec<u8>, line: &str) {
    reply::error_line(out, line);
}

/// The error for `SET key value <option>`: the options Redis has get a
/// clear "not supported", anything else a syntax error.
pub(crate) fn set_option_error(option: &[u8]) -> String {
    let option = String::from_utf8_lossy(option).to_ascii_uppercase();
    let known = ["EX", "PX", "EXAT", "PXAT", "NX", "XX", "KEEPTTL", "GET"];
    if known.contains(&option.as_str()) {
        format!("ERR SET option '{option}' is not supported by dkv (no TTLs or conditional writes)")
    } else {
        "ERR syntax error".to_string()
    }
}

/// Redis-style glob with `*` and `?` (enough for CONFIG GET patterns), in
/// linear time: a pattern of many stars cannot make it backtrack
/// exponentially.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_redis() {
        assert!(glob_match(b"save", b"save"));
        assert!(glob_match(b"*", b"appendonly"));
        assert!(glob_match(b"append*", b"appendfsync"));
        assert!(glob_match(b"s?ve", b"save"));
        assert!(!glob_match(b"save", b"saves"));
        assert!(!glob_match(b"x*", b"save"));
        assert!(glob_match(b"*a*e*", b"save"));
        assert!(!glob_match(
            &[b'*'; 5000]
                .iter()
                .chain(b"x")
                .copied()
                .collect::<Vec<u8>>(),
            b"appendonly-appendonly"
        ));
    }
}
