//! The command table: every command dkv knows, its arity, flags and key
//! positions, as `COMMAND` reports them and as the parser checks them.
//!
//! Arity follows Redis: the argument count including the name, negative
//! for "at least". Keys are `first_key..=last_key` stepping by `step`
//! (`last_key` -1: up to the last argument); 0, 0, 0 for a command with no
//! keys.

/// Which command an entry is, for the parser's dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    Append,
    Auth,
    BitCount,
    BitPos,
    Client,
    Command,
    Config,
    Consistency,
    Copy,
    DbSize,
    Decr,
    DecrBy,
    Del,
    Discard,
    DkvDeadline,
    DkvDelIfEq,
    DkvLocal,
    DkvPExpireIfEq,
    Echo,
    Eval,
    EvalSha,
    Exec,
    Exists,
    Expire,
    ExpireAt,
    ExpireTime,
    FlushAll,
    FlushDb,
    Get,
    GetBit,
    GetDel,
    GetEx,
    GetRange,
    GetSet,
    Hello,
    Incr,
    IncrBy,
    IncrByFloat,
    Info,
    Keys,
    Lcs,
    MGet,
    MSet,
    MSetNx,
    Multi,
    PExpire,
    PExpireAt,
    PExpireTime,
    PSetEx,
    PTtl,
    Persist,
    Ping,
    Quit,
    RandomKey,
    Rename,
    RenameNx,
    Scan,
    Script,
    Select,
    Set,
    SetBit,
    SetEx,
    SetNx,
    SetRange,
    Strlen,
    Substr,
    Time,
    Touch,
    Ttl,
    Type,
    Unlink,
    Unwatch,
    Watch,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub name: Name,
    /// As `COMMAND` shows it: lower case.
    pub text: &'static str,
    pub arity: i64,
    pub flags: &'static [&'static str],
    pub first_key: i64,
    pub last_key: i64,
    pub step: i64,
}

impl Spec {
    /// Whether `argc` arguments (the name included) fit the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc as i64 == self.arity
        } else {
            argc as i64 >= -self.arity
        }
    }

    /// Whether the command may run before the connection authenticates.
    pub fn allowed_unauthenticated(&self) -> bool {
        self.flags.contains(&"no_auth")
    }
}

const fn spec(
    name: Name,
    text: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
) -> Spec {
    Spec {
        name,
        text,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
    }
}

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);

/// Every command, sorted by name.
pub(crate) const TABLE: &[Spec] = &[
    spec(
        Name::Append,
        "append",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::Auth,
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        NO_KEYS,
    ),
    spec(Name::BitCount, "bitcount", -2, &["readonly"], (1, 1, 1)),
    spec(Name::BitPos, "bitpos", -3, &["readonly"], (1, 1, 1)),
    spec(
        Name::Client,
        "client",
        -2,
        &["admin", "noscript", "loading", "stale"],
        NO_KEYS,
    ),
    spec(
        Name::Command,
        "command",
        -1,
        &["random", "loading", "stale"],
        NO_KEYS,
    ),
    spec(
        Name::Config,
        "config",
        -2,
        &["admin", "noscript", "loading", "stale"],
        NO_KEYS,
    ),
    spec(Name::Consistency, "consistency", -1, &["fast"], NO_KEYS),
    spec(Name::Copy, "copy", -3, &["write", "denyoom"], (1, 2, 1)),
    spec(Name::DbSize, "dbsize", 1, &["readonly", "fast"], NO_KEYS),
    spec(
        Name::Decr,
        "decr",
        2,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::DecrBy,
        "decrby",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
    ),
    spec(Name::Del, "del", -2, &["write"], (1, -1, 1)),
    spec(
        Name::Discard,
        "discard",
        1,
        &["noscript", "loading", "stale", "fast"],
        NO_KEYS,
    ),
    spec(Name::DkvDeadline, "dkv.deadline", -4, &["fast"], NO_KEYS),
    spec(
        Name::DkvDelIfEq,
        "dkv.delifeq",
        3,
        &["write", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::DkvLocal,
        "dkv.local",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::DkvPExpireIfEq,
        "dkv.pexpireifeq",
        -4,
        &["write", "fast"],
        (1, 1, 1),
    ),
    spec(Name::Echo, "echo", 2, &["fast"], NO_KEYS),
    spec(Name::Eval, "eval", -3, &["noscript", "stale"], NO_KEYS),
    spec(
        Name::EvalSha,
        "evalsha",
        -3,
        &["noscript", "stale"],
        NO_KEYS,
    ),
    spec(
        Name::Exec,
        "exec",
        1,
        &["noscript", "loading", "stale"],
        NO_KEYS,
    ),
    spec(
        Name::Exists,
        "exists",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
    ),
    spec(Name::Expire, "expire", -3, &["write", "fast"], (1, 1, 1)),
    spec(
        Name::ExpireAt,
        "expireat",
        -3,
        &["write", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::ExpireTime,
        "expiretime",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
    ),
    spec(Name::FlushAll, "flushall", -1, &["write"], NO_KEYS),
    spec(Name::FlushDb, "flushdb", -1, &["write"], NO_KEYS),
    spec(Name::Get, "get", 2, &["readonly", "fast"], (1, 1, 1)),
    spec(Name::GetBit, "getbit", 3, &["readonly", "fast"], (1, 1, 1)),
    spec(Name::GetDel, "getdel", 2, &["write", "fast"], (1, 1, 1)),
    spec(Name::GetEx, "getex", -2, &["write", "fast"], (1, 1, 1)),
    spec(Name::GetRange, "getrange", 4, &["readonly"], (1, 1, 1)),
    spec(
        Name::GetSet,
        "getset",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::Hello,
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        NO_KEYS,
    ),
    spec(
        Name::Incr,
        "incr",
        2,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::IncrBy,
        "incrby",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::IncrByFloat,
        "incrbyfloat",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::Info,
        "info",
        -1,
        &["random", "loading", "stale"],
        NO_KEYS,
    ),
    spec(Name::Keys, "keys", 2, &["readonly"], NO_KEYS),
    spec(Name::Lcs, "lcs", -3, &["readonly"], (1, 2, 1)),
    spec(Name::MGet, "mget", -2, &["readonly", "fast"], (1, -1, 1)),
    spec(Name::MSet, "mset", -3, &["write", "denyoom"], (1, -1, 2)),
    spec(
        Name::MSetNx,
        "msetnx",
        -3,
        &["write", "denyoom"],
        (1, -1, 2),
    ),
    spec(
        Name::Multi,
        "multi",
        1,
        &["noscript", "loading", "stale", "fast"],
        NO_KEYS,
    ),
    spec(Name::Persist, "persist", 2, &["write", "fast"], (1, 1, 1)),
    spec(Name::PExpire, "pexpire", -3, &["write", "fast"], (1, 1, 1)),
    spec(
        Name::PExpireAt,
        "pexpireat",
        -3,
        &["write", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::PExpireTime,
        "pexpiretime",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
    ),
    spec(Name::Ping, "ping", -1, &["fast", "stale"], NO_KEYS),
    spec(Name::PSetEx, "psetex", 4, &["write", "denyoom"], (1, 1, 1)),
    spec(Name::PTtl, "pttl", 2, &["readonly", "fast"], (1, 1, 1)),
    spec(
        Name::Quit,
        "quit",
        -1,
        &["loading", "stale", "fast", "no_auth"],
        NO_KEYS,
    ),
    spec(Name::RandomKey, "randomkey", 1, &["readonly"], NO_KEYS),
    spec(Name::Rename, "rename", 3, &["write"], (1, 2, 1)),
    spec(Name::RenameNx, "renamenx", 3, &["write", "fast"], (1, 2, 1)),
    spec(Name::Scan, "scan", -2, &["readonly"], NO_KEYS),
    spec(Name::Script, "script", -2, &["noscript"], NO_KEYS),
    spec(
        Name::Select,
        "select",
        2,
        &["loading", "stale", "fast"],
        NO_KEYS,
    ),
    spec(Name::Set, "set", -3, &["write", "denyoom"], (1, 1, 1)),
    spec(Name::SetBit, "setbit", 4, &["write", "denyoom"], (1, 1, 1)),
    spec(Name::SetEx, "setex", 4, &["write", "denyoom"], (1, 1, 1)),
    spec(
        Name::SetNx,
        "setnx",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
    ),
    spec(
        Name::SetRange,
        "setrange",
        4,
        &["write", "denyoom"],
        (1, 1, 1),
    ),
    spec(Name::Strlen, "strlen", 2, &["readonly", "fast"], (1, 1, 1)),
    spec(Name::Substr, "substr", 4, &["readonly"], (1, 1, 1)),
    spec(
        Name::Time,
        "time",
        1,
        &["random", "loading", "stale", "fast"],
        NO_KEYS,
    ),
    spec(Name::Touch, "touch", -2, &["readonly", "fast"], (1, -1, 1)),
    spec(Name::Ttl, "ttl", 2, &["readonly", "fast"], (1, 1, 1)),
    spec(Name::Type, "type", 2, &["readonly", "fast"], (1, 1, 1)),
    spec(Name::Unlink, "unlink", -2, &["write", "fast"], (1, -1, 1)),
    spec(
        Name::Unwatch,
        "unwatch",
        1,
        &["noscript", "loading", "stale", "fast"],
        NO_KEYS,
    ),
    spec(
        Name::Watch,
        "watch",
        -2,
        &["noscript", "loading", "stale", "fast"],
        (1, -1, 1),
    ),
];

/// The entry for a command name already in lower case, by binary search
/// of the sorted [`TABLE`] (a test checks the order).
pub(crate) fn lookup(lowercase: &[u8]) -> Option<&'static Spec> {
    lookup_indexed(lowercase).map(|(_, spec)| spec)
}

/// The entry for a command name as a client sent it, in any case, with
/// its place in [`TABLE`]: `GET` and `SET` (the data path's commands,
/// asked for on every request) by a direct match, the rest lower-cased on
/// the stack (names are short ASCII) and found by [`lookup_indexed`].
pub(crate) fn lookup_any_case(name: &[u8]) -> Option<(usize, &'static Spec)> {
    let is = |word: &[u8; 3]| name.eq_ignore_ascii_case(word);
    let index = if is(b"get") {
        GET
    } else if is(b"set") {
        SET
    } else {
        let mut lowered = [0u8; 16];
        let buf = lowered.get_mut(..name.len())?;
        buf.copy_from_slice(name);
        buf.make_ascii_lowercase();
        return lookup_indexed(buf);
    };
    Some((index, &ENTRIES[index]))
}

/// [`lookup`], with the entry's place in [`TABLE`] (what the command
/// statistics are kept by).
pub(crate) fn lookup_indexed(lowercase: &[u8]) -> Option<(usize, &'static Spec)> {
    let index = ENTRIES
        .binary_search_by(|spec| spec.text.as_bytes().cmp(lowercase))
        .ok()?;
    Some((index, &ENTRIES[index]))
}

/// [`TABLE`] at one address (a constant has none of its own).
static ENTRIES: &[Spec] = TABLE;

const GET: usize = index_of("get");
const SET: usize = index_of("set");

/// The index of `text` in [`TABLE`], at compile time.
const fn index_of(text: &str) -> usize {
    let mut i = 0;
    while i < TABLE.len() {
        if eq(TABLE[i].text.as_bytes(), text.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("no such command in the table")
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_every_name_is_found() {
        assert!(TABLE.windows(2).all(|w| w[0].text < w[1].text));
        for spec in TABLE {
            assert_eq!(
                lookup(spec.text.as_bytes()).map(|s| s.name),
                Some(spec.name)
            );
        }
        for (index, spec) in TABLE.iter().enumerate() {
            let found = lookup_indexed(spec.text.as_bytes()).map(|(i, s)| (i, s.name));
            assert_eq!(found, Some((index, spec.name)), "{}", spec.text);
        }
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(b"").is_none());
        assert!(lookup(b"GET").is_none(), "lookups are by lower-case name");
    }

    #[test]
    fn names_are_found_in_any_case_and_unknown_ones_are_not() {
        for name in [
            "get", "GET", "Get", "gEt", "set", "SET", "sEt", "del", "DEL", "Ttl",
        ] {
            let lower = name.to_ascii_lowercase();
            assert_eq!(
                lookup_any_case(name.as_bytes()).map(|(i, s)| (i, s.name)),
                lookup_indexed(lower.as_bytes()).map(|(i, s)| (i, s.name)),
                "{name}"
            );
            assert!(lookup_any_case(name.as_bytes()).is_some(), "{name}");
        }
        for name in [
            "",
            "ge",
            "gets",
            "g\0t",
            "xet",
            "nosuchcommand",
            "averyveryverylongname",
        ] {
            assert!(lookup_any_case(name.as_bytes()).is_none(), "{name}");
        }
    }

    #[test]
    fn arity_is_exact_or_a_minimum() {
        let get = lookup(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(1) && !get.arity_ok(3));
        let del = lookup(b"del").unwrap();
        assert!(!del.arity_ok(1) && del.arity_ok(2) && del.arity_ok(100));
    }
}
