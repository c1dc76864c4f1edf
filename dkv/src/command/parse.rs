//! [`Command`]: a client request parsed and validated once, from the
//! arguments the RESP parser produced, into a typed value.
//!
//! Everything that can be checked without state is checked here: the
//! name, the arity (from [`super::table`]), options and their arguments,
//! with Redis's wording for every refusal. Arguments are borrowed from the
//! request, so parsing allocates nothing on the data path.

use crate::command::error::CommandError;
use crate::command::parse_data;
use crate::command::program::Program;
use crate::command::table::{self, Name, Spec};
use crate::counter::Delta;
use crate::node::Consistency;
use crate::resp;

/// A request's arguments as the command layer reads them: the RESP
/// parser's [`resp::Command`], less any prefix already taken off (such as
/// `DKV.DEADLINE <ms>`). Argument 0 is the command name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    command: &'a resp::Command,
    skip: usize,
}

impl<'a> Request<'a> {
    /// The whole request.
    pub fn new(command: &'a resp::Command) -> Request<'a> {
        Request { command, skip: 0 }
    }

    /// The request less its first `n` arguments.
    pub fn skip(self, n: usize) -> Request<'a> {
        Request {
            command: self.command,
            skip: self.skip + n,
        }
    }

    /// Argument `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&'a [u8]> {
        self.command.get(index + self.skip)
    }

    /// The command name.
    pub fn name(&self) -> Option<&'a [u8]> {
        self.get(0)
    }

    /// How many arguments, the name included.
    pub fn len(&self) -> usize {
        self.command.len().saturating_sub(self.skip)
    }

    /// The arguments in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let this = *self;
        (0..this.len()).filter_map(move |i| this.get(i))
    }

    /// An owned copy (what `MULTI` queues).
    pub fn to_command(self) -> resp::Command {
        resp::Command::from_args(self.iter())
    }
}

/// Arguments `start..` of a request (keys of `DEL`, sections of `INFO`).
#[derive(Debug, Clone, Copy)]
pub struct ArgList<'a> {
    request: Request<'a>,
    start: usize,
}

impl<'a> ArgList<'a> {
    pub(crate) fn new(request: Request<'a>, start: usize) -> ArgList<'a> {
        ArgList { request, start }
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.request.len().saturating_sub(self.start)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each argument in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let request = self.request;
        (self.start..request.len()).filter_map(move |i| request.get(i))
    }

    /// Consecutive pairs (`MSET key value ...`); a trailing odd argument
    /// is left out (the parser refuses it first).
    pub fn pairs(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let (request, start) = (self.request, self.start);
        (0..self.len() / 2).filter_map(move |i| {
            let at = start + 2 * i;
            Some((request.get(at)?, request.get(at + 1)?))
        })
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello<'a> {
    /// 2 or 3; `None` keeps the connection's.
    pub protocol: Option<u8>,
    /// `AUTH username password`.
    pub auth: Option<(&'a [u8], &'a [u8])>,
    /// `SETNAME clientname`.
    pub name: Option<&'a [u8]>,
}

/// `COMMAND [COUNT | DOCS ... | INFO name ...]`.
#[derive(Debug, Clone, Copy)]
pub enum CommandQuery<'a> {
    /// Every command.
    All,
    /// How many there are.
    Count,
    /// Documentation (none: an empty reply).
    Docs,
    /// The named commands.
    Info(ArgList<'a>),
}

/// `CONFIG GET pattern ... | SET ... | RESETSTAT`.
#[derive(Debug, Clone, Copy)]
pub enum ConfigRequest<'a> {
    /// The parameters matching any pattern.
    Get(ArgList<'a>),
    /// Refused: dkv is configured with flags.
    Set,
    /// Zero the counters.
    ResetStat,
}

/// `CLIENT SETNAME | GETNAME | ID | SETINFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRequest<'a> {
    /// Name the connection.
    SetName(&'a [u8]),
    /// The connection's name.
    GetName,
    /// The connection's id.
    Id,
    /// A client library announcing itself: accepted, ignored.
    SetInfo,
}

/// `CONSISTENCY [<level> | READ <level> WRITE <level>]`: `None` for a
/// level left as it is; both `None` shows the levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsistencyRequest {
    /// The new read level.
    pub read: Option<Consistency>,
    /// The new write level.
    pub write: Option<Consistency>,
}

/// A parsed client request.
#[derive(Debug, Clone)]
pub enum Command<'a> {
    /// `GET key`.
    Get { key: &'a [u8] },
    /// `SET key value [EX ...]`, `SETEX`, `PSETEX`: a blind write, with
    /// an absolute expiry (unix ms) if any.
    Set {
        key: &'a [u8],
        value: &'a [u8],
        expires_at: Option<u64>,
    },
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT`: an add to the
    /// counter at `key`.
    Add { key: &'a [u8], delta: Delta },
    /// A data command that reads first (see [`Program`]).
    #[allow(private_interfaces)]
    Program(Box<Program>),
    /// `FLUSHDB`, `FLUSHALL` (`ASYNC`/`SYNC` accepted; both wait).
    Flush,
    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]`.
    Scan {
        cursor: u64,
        count: usize,
        pattern: &'a [u8],
        /// `TYPE` named a type other than `string`: nothing matches.
        no_type_matches: bool,
    },
    /// `KEYS pattern`.
    Keys { pattern: &'a [u8] },
    /// `RANDOMKEY`.
    RandomKey,
    /// `MULTI`.
    Multi,
    /// `EXEC`.
    Exec,
    /// `DISCARD`.
    Discard,
    /// `WATCH key ...`: refused (dkv's transactions are not isolated).
    Watch,
    /// `UNWATCH`: nothing to undo.
    Unwatch,
    /// `DEL key ...`.
    Del { keys: ArgList<'a> },
    /// `EXISTS key ...`.
    Exists { keys: ArgList<'a> },
    /// `MGET key ...`.
    MGet { keys: ArgList<'a> },
    /// `MSET key value ...`.
    MSet { pairs: ArgList<'a> },
    /// `DKV.LOCAL key`: this node's own copy, not coordinated.
    Local { key: &'a [u8] },
    /// `PING [message]`.
    Ping { message: Option<&'a [u8]> },
    /// `ECHO message`.
    Echo { message: &'a [u8] },
    /// `DBSIZE`.
    DbSize,
    /// `TIME`.
    Time,
    /// `INFO [section ...]`.
    Info { sections: ArgList<'a> },
    /// `AUTH [username] password`.
    Auth {
        user: Option<&'a [u8]>,
        password: &'a [u8],
    },
    /// `HELLO ...`.
    Hello(Hello<'a>),
    /// `SELECT 0`.
    Select,
    /// `QUIT`.
    Quit,
    /// `COMMAND ...`.
    Command(CommandQuery<'a>),
    /// `CONFIG ...`.
    Config(ConfigRequest<'a>),
    /// `CLIENT ...`.
    Client(ClientRequest<'a>),
    /// `CONSISTENCY ...`.
    Consistency(ConsistencyRequest),
}

/// A request's name and table entry, found before its arguments are
/// looked at (so the caller can check authentication in between, as
/// Redis does: unknown command, then arity, then `NOAUTH`).
pub(crate) fn lookup(request: Request<'_>) -> Result<(usize, &'static Spec), CommandError> {
    let name = request.name().unwrap_or_default();
    let (index, spec) = table::lookup_any_case(name)
        .ok_or_else(|| CommandError::unknown(name, request.iter().skip(1)))?;
    if !spec.arity_ok(request.len()) {
        return Err(CommandError::WrongArity(spec.text));
    }
    Ok((index, spec))
}

/// Parses the arguments of a request whose entry [`lookup`] found, at
/// `now()`: the time expiries go by, asked only by commands that take one.
pub(crate) fn parse<'a>(
    spec: &Spec,
    request: Request<'a>,
    now: &dyn Fn() -> u64,
) -> Result<Command<'a>, CommandError> {
    let arg = |i: usize| request.get(i).unwrap_or_default();
    let rest = |from: usize| ArgList::new(request, from);
    let argc = request.len();
    Ok(match spec.name {
        Name::Get => Command::Get { key: arg(1) },
        Name::Set if argc == 3 => Command::Set {
            key: arg(1),
            value: arg(2),
            expires_at: None,
        },
        Name::Del => Command::Del { keys: rest(1) },
        Name::Exists => Command::Exists { keys: rest(1) },
        Name::MGet => Command::MGet { keys: rest(1) },
        Name::MSet if argc % 2 == 1 => Command::MSet { pairs: rest(1) },
        Name::MSet => return Err(CommandError::WrongArity("mset")),
        Name::DkvLocal => Command::Local { key: arg(1) },
        Name::Ping if argc <= 2 => Command::Ping {
            message: request.get(1),
        },
        Name::Ping => return Err(CommandError::WrongArity("ping")),
        Name::Echo => Command::Echo { message: arg(1) },
        Name::Time => Command::Time,
        Name::DbSize => Command::DbSize,
        Name::Info => Command::Info { sections: rest(1) },
        Name::Auth if argc == 2 => Command::Auth {
            user: None,
            password: arg(1),
        },
        Name::Auth if argc == 3 => Command::Auth {
            user: Some(arg(1)),
            password: arg(2),
        },
        Name::Auth => return Err(CommandError::Syntax),
        Name::Hello => Command::Hello(parse_hello(request)?),
        Name::Select => match std::str::from_utf8(arg(1))
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        {
            Some(0) => Command::Select,
            Some(_) => return Err(CommandError::refused("ERR DB index is out of range")),
            None => {
                return Err(CommandError::refused(
                    "ERR value is not an integer or out of range",
                ))
            }
        },
        Name::Quit => Command::Quit,
        Name::Command => Command::Command(parse_command_query(request)?),
        Name::Config => Command::Config(parse_config(request)?),
        Name::Client => Command::Client(parse_client(request)?),
        Name::Consistency => Command::Consistency(parse_consistency(request)?),
        Name::FlushDb | Name::FlushAll => match request.get(1).map(<[u8]>::to_ascii_uppercase) {
            None => Command::Flush,
            Some(mode) if argc == 2 && (mode == b"ASYNC" || mode == b"SYNC") => Command::Flush,
            Some(_) => return Err(CommandError::Syntax),
        },
        Name::Scan => parse_scan(request)?,
        Name::Keys => Command::Keys { pattern: arg(1) },
        Name::RandomKey => Command::RandomKey,
        Name::Multi => Command::Multi,
        Name::Exec => Command::Exec,
        Name::Discard => Command::Discard,
        Name::Watch => Command::Watch,
        Name::Unwatch => Command::Unwatch,
        // The executor takes the prefix off before it parses; one left
        // here was nested.
        Name::DkvDeadline => {
            return Err(CommandError::refused(
                "ERR DKV.DEADLINE wraps one command: DKV.DEADLINE <unix-ms> <command> [arg ...]",
            ))
        }
        other => {
            return parse_data::parse(other, request, now()).unwrap_or(Err(CommandError::Syntax))
        }
    })
}

fn parse_scan(request: Request<'_>) -> Result<Command<'_>, CommandError> {
    let cursor = request
        .get(1)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| CommandError::refused("ERR invalid cursor"))?;
    let (mut count, mut pattern, mut no_type_matches) = (10, &b"*"[..], false);
    let mut i = 2;
    while let Some(option) = request.get(i) {
        let value = request.get(i + 1).ok_or(CommandError::Syntax)?;
        match option.to_ascii_uppercase().as_slice() {
            b"MATCH" => pattern = value,
            b"COUNT" => {
                count = match crate::command::strings::parse_i64(value) {
                    Some(n) if n >= 1 => n as usize,
                    Some(_) => return Err(CommandError::Syntax),
                    None => {
                        return Err(CommandError::refused(
                            "ERR value is not an integer or out of range",
                        ))
                    }
                }
            }
            b"TYPE" => no_type_matches = !value.eq_ignore_ascii_case(b"string"),
            _ => return Err(CommandError::Syntax),
        }
        i += 2;
    }
    Ok(Command::Scan {
        cursor,
        count,
        pattern,
        no_type_matches,
    })
}

fn subcommand(request: Request<'_>) -> Vec<u8> {
    request
        .get(1)
        .map(<[u8]>::to_ascii_uppercase)
        .unwrap_or_default()
}

fn unknown_subcommand(request: Request<'_>, command: &str) -> CommandError {
    let sub: String = String::from_utf8_lossy(request.get(1).unwrap_or_default())
        .chars()
        .take(128)
        .collect();
    CommandError::Refused(format!("ERR unknown subcommand '{sub}'. Try {command} HELP.").into())
}

fn subcommand_arity(command: &str, sub: &str) -> CommandError {
    CommandError::Refused(
        format!("ERR wrong number of arguments for '{command}|{sub}' command").into(),
    )
}

fn parse_hello(request: Request<'_>) -> Result<Hello<'_>, CommandError> {
    let protocol = match request.get(1) {
        None => None,
        Some(b"2") => Some(2),
        Some(b"3") => Some(3),
        Some(_) => {
            return Err(CommandError::refused(
                "NOPROTO unsupported protocol version",
            ))
        }
    };
    let mut hello = Hello {
        protocol,
        auth: None,
        name: None,
    };
    let mut rest = request.iter().skip(2);
    while let Some(option) = rest.next() {
        match option.to_ascii_uppercase().as_slice() {
            b"AUTH" => match (rest.next(), rest.next()) {
                (Some(user), Some(password)) => hello.auth = Some((user, password)),
                _ => {
                    return Err(CommandError::refused(
                        "ERR syntax error in HELLO option 'AUTH'",
                    ))
                }
            },
            b"SETNAME" => match rest.next() {
                Some(name) => hello.name = Some(name),
                None => {
                    return Err(CommandError::refused(
                        "ERR syntax error in HELLO option 'SETNAME'",
                    ))
                }
            },
            _ => {
                let shown: String = String::from_utf8_lossy(option).chars().take(128).collect();
                return Err(CommandError::Refused(
                    format!("ERR syntax error in HELLO option '{shown}'").into(),
                ));
            }
        }
    }
    Ok(hello)
}

fn parse_command_query(request: Request<'_>) -> Result<CommandQuery<'_>, CommandError> {
    if request.len() == 1 {
        return Ok(CommandQuery::All);
    }
    match subcommand(request).as_slice() {
        b"COUNT" if request.len() == 2 => Ok(CommandQuery::Count),
        b"COUNT" => Err(subcommand_arity("command", "count")),
        b"DOCS" => Ok(CommandQuery::Docs),
        b"INFO" => Ok(CommandQuery::Info(ArgList::new(request, 2))),
        _ => Err(unknown_subcommand(request, "COMMAND")),
    }
}

fn parse_config(request: Request<'_>) -> Result<ConfigRequest<'_>, CommandError> {
    match subcommand(request).as_slice() {
        b"GET" if request.len() >= 3 => Ok(ConfigRequest::Get(ArgList::new(request, 2))),
        b"GET" => Err(subcommand_arity("config", "get")),
        b"SET" => Ok(ConfigRequest::Set),
        b"RESETSTAT" if request.len() == 2 => Ok(ConfigRequest::ResetStat),
        b"RESETSTAT" => Err(subcommand_arity("config", "resetstat")),
        _ => Err(unknown_subcommand(request, "CONFIG")),
    }
}

fn parse_client(request: Request<'_>) -> Result<ClientRequest<'_>, CommandError> {
    let argc = request.len();
    match subcommand(request).as_slice() {
        b"SETNAME" if argc == 3 => Ok(ClientRequest::SetName(request.get(2).unwrap_or_default())),
        b"SETNAME" => Err(subcommand_arity("client", "setname")),
        b"GETNAME" if argc == 2 => Ok(ClientRequest::GetName),
        b"GETNAME" => Err(subcommand_arity("client", "getname")),
        b"ID" if argc == 2 => Ok(ClientRequest::Id),
        b"ID" => Err(subcommand_arity("client", "id")),
        b"SETINFO" if argc == 4 => Ok(ClientRequest::SetInfo),
        b"SETINFO" => Err(subcommand_arity("client", "setinfo")),
        _ => Err(unknown_subcommand(request, "CLIENT")),
    }
}

const CONSISTENCY_SYNTAX: &str = "ERR syntax: CONSISTENCY [<level> | READ <level> WRITE <level>]";

fn parse_level(arg: &[u8]) -> Result<Consistency, CommandError> {
    let text = String::from_utf8_lossy(arg);
    Consistency::parse(&text).ok_or_else(|| {
        let shown: String = text.chars().take(64).collect();
        CommandError::Refused(
            format!(
                "ERR consistency must be ONE, QUORUM, ALL or a number of replicas, not '{shown}'"
            )
            .into(),
        )
    })
}

fn parse_consistency(request: Request<'_>) -> Result<ConsistencyRequest, CommandError> {
    let args = ArgList::new(request, 1);
    let mut levels = ConsistencyRequest {
        read: None,
        write: None,
    };
    match args.len() {
        0 => {}
        1 => {
            let level = parse_level(arg_at(request, 1))?;
            levels.read = Some(level);
            levels.write = Some(level);
        }
        n if n % 2 == 0 => {
            for (which, level) in args.pairs() {
                let level = parse_level(level)?;
                match which.to_ascii_uppercase().as_slice() {
                    b"READ" => levels.read = Some(level),
                    b"WRITE" => levels.write = Some(level),
                    _ => return Err(CommandError::refused(CONSISTENCY_SYNTAX)),
                }
            }
        }
        _ => return Err(CommandError::refused(CONSISTENCY_SYNTAX)),
    }
    Ok(levels)
}

fn arg_at(request: Request<'_>, index: usize) -> &[u8] {
    request.get(index).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<String, String> {
        let request = resp::Command::from_args(line.split(' '));
        let request = Request::new(&request);
        let (_, spec) = lookup(request).map_err(|e| e.to_string())?;
        parse(spec, request, &|| 1_000_000)
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn names_are_case_insensitive_and_arity_is_checked_first() {
        assert!(parse_line("get k").is_ok());
        assert!(parse_line("GeT k").is_ok());
        assert_eq!(
            parse_line("GET").unwrap_err(),
            "ERR wrong number of arguments for 'get' command"
        );
        assert!(parse_line("NOSUCHCOMMANDWITHALONGNAME x")
            .unwrap_err()
            .starts_with("ERR unknown command 'NOSUCHCOMMANDWITHALONGNAME'"));
    }

    #[test]
    fn options_and_subcommands_get_redis_errors() {
        assert_eq!(
            parse_line("SET k v EX 10").unwrap(),
            r#"Set { key: [107], value: [118], expires_at: Some(1010000) }"#
        );
        assert_eq!(
            parse_line("SET k v EX 0").unwrap_err(),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            parse_line("SET k v EX 1 PX 1").unwrap_err(),
            "ERR syntax error"
        );
        assert_eq!(parse_line("SET k v NX XX").unwrap_err(), "ERR syntax error");
        assert_eq!(parse_line("SET k v EX").unwrap_err(), "ERR syntax error");
        assert_eq!(
            parse_line("SET k v EX x").unwrap_err(),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            parse_line("SET k v EX 9223372036854775807").unwrap_err(),
            "ERR invalid expire time in 'set' command"
        );
        assert!(parse_line("SET k v NX GET KEEPTTL")
            .unwrap()
            .starts_with("Program"));
        assert_eq!(parse_line("SET k v BOGUS").unwrap_err(), "ERR syntax error");
        assert_eq!(
            parse_line("EXPIRE k 10 NX XX").unwrap_err(),
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            parse_line("EXPIRE k 10 GT LT").unwrap_err(),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            parse_line("EXPIRE k 10 FOO").unwrap_err(),
            "ERR Unsupported option FOO"
        );
        assert_eq!(
            parse_line("SETEX k -1 v").unwrap_err(),
            "ERR invalid expire time in 'setex' command"
        );
        assert_eq!(
            parse_line("GETEX k EX 0").unwrap_err(),
            "ERR invalid expire time in 'getex' command"
        );
        assert_eq!(
            parse_line("SETBIT k 1 2").unwrap_err(),
            "ERR bit is not an integer or out of range"
        );
        assert_eq!(
            parse_line("SETBIT k -1 1").unwrap_err(),
            "ERR bit offset is not an integer or out of range"
        );
        assert_eq!(
            parse_line("SETRANGE k -1 x").unwrap_err(),
            "ERR offset is out of range"
        );
        assert_eq!(
            parse_line("INCRBY k 1.5").unwrap_err(),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            parse_line("DECRBY k -9223372036854775808").unwrap_err(),
            "ERR decrement would overflow"
        );
        assert_eq!(
            parse_line("LCS a b LEN IDX").unwrap_err(),
            "ERR If you want both the length and indexes, please just use IDX."
        );
        assert!(parse_line("EVALSHA abc 0")
            .unwrap_err()
            .starts_with("ERR dkv does not run Lua scripts"));
        assert_eq!(
            parse_line("MSET a 1 b").unwrap_err(),
            "ERR wrong number of arguments for 'mset' command"
        );
        assert_eq!(
            parse_line("SELECT 1").unwrap_err(),
            "ERR DB index is out of range"
        );
        assert_eq!(
            parse_line("SELECT x").unwrap_err(),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            parse_line("HELLO 4").unwrap_err(),
            "NOPROTO unsupported protocol version"
        );
        assert_eq!(
            parse_line("HELLO 3 AUTH x").unwrap_err(),
            "ERR syntax error in HELLO option 'AUTH'"
        );
        assert_eq!(
            parse_line("CLIENT FOO").unwrap_err(),
            "ERR unknown subcommand 'FOO'. Try CLIENT HELP."
        );
        assert_eq!(
            parse_line("CLIENT SETNAME").unwrap_err(),
            "ERR wrong number of arguments for 'client|setname' command"
        );
        assert_eq!(
            parse_line("CONFIG GET").unwrap_err(),
            "ERR wrong number of arguments for 'config|get' command"
        );
        assert!(parse_line("CONSISTENCY MOST")
            .unwrap_err()
            .starts_with("ERR consistency must be ONE, QUORUM, ALL"));
        assert!(parse_line("CONSISTENCY READ ONE WRONG ALL")
            .unwrap_err()
            .starts_with("ERR syntax: CONSISTENCY"));
    }

    #[test]
    fn key_lists_and_pairs_borrow_the_request() {
        let request = resp::Command::from_args(["MSET", "a", "1", "b", "2"]);
        let request = Request::new(&request);
        let (_, spec) = lookup(request).unwrap();
        let Ok(Command::MSet { pairs }) = parse(spec, request, &|| 0) else {
            panic!("MSET")
        };
        let got: Vec<(&[u8], &[u8])> = pairs.pairs().collect();
        assert_eq!(got, vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"2"[..])]);
        let request = resp::Command::from_args(["DEL", "x", "y"]);
        let request = Request::new(&request);
        let Ok(Command::Del { keys }) = parse(lookup(request).unwrap().1, request, &|| 0) else {
            panic!("DEL")
        };
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.iter().collect::<Vec<_>>(), vec![&b"x"[..], &b"y"[..]]);
    }
}
