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
    Auth,
    Client,
    Command,
    Config,
    Consistency,
    DbSize,
    Del,
    DkvDeadline,
    DkvLocal,
    Echo,
    Exists,
    Get,
    Hello,
    Info,
    MGet,
    MSet,
    Ping,
    Quit,
    Select,
    Set,
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
        Name::Auth,
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        NO_KEYS,
    ),
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
    spec(Name::DbSize, "dbsize", 1, &["readonly", "fast"], NO_KEYS),
    spec(Name::Del, "del", -2, &["write"], (1, -1, 1)),
    spec(Name::DkvDeadline, "dkv.deadline", -4, &["fast"], NO_KEYS),
    spec(
        Name::DkvLocal,
        "dkv.local",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
    ),
    spec(Name::Echo, "echo", 2, &["fast"], NO_KEYS),
    spec(
        Name::Exists,
        "exists",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
    ),
    spec(Name::Get, "get", 2, &["readonly", "fast"], (1, 1, 1)),
    spec(
        Name::Hello,
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        NO_KEYS,
    ),
    spec(
        Name::Info,
        "info",
        -1,
        &["random", "loading", "stale"],
        NO_KEYS,
    ),
    spec(Name::MGet, "mget", -2, &["readonly", "fast"], (1, -1, 1)),
    spec(Name::MSet, "mset", -3, &["write", "denyoom"], (1, -1, 2)),
    spec(Name::Ping, "ping", -1, &["fast", "stale"], NO_KEYS),
    spec(
        Name::Quit,
        "quit",
        -1,
        &["loading", "stale", "fast", "no_auth"],
        NO_KEYS,
    ),
    spec(
        Name::Select,
        "select",
        2,
        &["loading", "stale", "fast"],
        NO_KEYS,
    ),
    spec(Name::Set, "set", -3, &["write", "denyoom"], (1, 1, 1)),
];

/// The entry for a command name already in lower case. A `match` on the
/// bytes (the compiler dispatches on length, then content) costs a few
/// comparisons; the names and their order in [`TABLE`] are checked by a
/// test.
pub(crate) fn lookup(lowercase: &[u8]) -> Option<&'static Spec> {
    let index = match lowercase {
        b"auth" => 0,
        b"client" => 1,
        b"command" => 2,
        b"config" => 3,
        b"consistency" => 4,
        b"dbsize" => 5,
        b"del" => 6,
        b"dkv.deadline" => 7,
        b"dkv.local" => 8,
        b"echo" => 9,
        b"exists" => 10,
        b"get" => 11,
        b"hello" => 12,
        b"info" => 13,
        b"mget" => 14,
        b"mset" => 15,
        b"ping" => 16,
        b"quit" => 17,
        b"select" => 18,
        b"set" => 19,
        _ => return None,
    };
    TABLE.get(index)
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
        assert_eq!(TABLE.len(), 20, "a new command needs a line in lookup()");
        assert!(lookup(b"flushall").is_none());
        assert!(lookup(b"GET").is_none(), "lookups are by lower-case name");
    }

    #[test]
    fn arity_is_exact_or_a_minimum() {
        let get = lookup(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(1) && !get.arity_ok(3));
        let del = lookup(b"del").unwrap();
        assert!(!del.arity_ok(1) && del.arity_ok(2) && del.arity_ok(100));
    }
}
