use super::*;

fn found(value: &str) -> Found {
    Found {
        value: Some(value.as_bytes().to_vec()),
        expires_at: None,
    }
}

fn expiring(value: &str, at: u64) -> Found {
    Found {
        value: Some(value.as_bytes().to_vec()),
        expires_at: Some(at),
    }
}

fn missing() -> Found {
    Found::default()
}

fn run(program: Program, reads: Vec<Found>) -> (String, Vec<Write>) {
    let d = program.decide(reads, 1_000_000, false);
    (String::from_utf8(d.reply).unwrap(), d.writes)
}

fn put(key: &str, value: &str, expires_at: Option<u64>) -> Write {
    Write::Put {
        key: key.into(),
        value: value.into(),
        expires_at,
    }
}

fn set(condition: Option<Condition>, get: bool, expiry: NewExpiry) -> Program {
    Program::Set {
        key: b"k".to_vec(),
        value: b"new".to_vec(),
        condition,
        get,
        expiry,
        integer_reply: false,
    }
}

#[test]
fn conditional_sets_write_only_when_their_condition_holds() {
    let nx = set(Some(Condition::Missing), false, NewExpiry::None);
    assert_eq!(
        run(nx.clone(), vec![missing()]),
        ("+OK\r\n".into(), vec![put("k", "new", None)])
    );
    assert_eq!(run(nx, vec![found("old")]), ("$-1\r\n".into(), vec![]));
    let xx_get = set(Some(Condition::Present), true, NewExpiry::Keep);
    assert_eq!(
        run(xx_get.clone(), vec![expiring("old", 2_000_000)]),
        (
            "$3\r\nold\r\n".into(),
            vec![put("k", "new", Some(2_000_000))]
        )
    );
    assert_eq!(run(xx_get, vec![missing()]), ("$-1\r\n".into(), vec![]));
    let setnx = Program::Set {
        key: b"k".to_vec(),
        value: b"new".to_vec(),
        condition: Some(Condition::Missing),
        get: false,
        expiry: NewExpiry::None,
        integer_reply: true,
    };
    assert_eq!(run(setnx, vec![found("x")]).0, ":0\r\n");
}

#[test]
fn expire_follows_redis_conditions_and_deletes_past_times() {
    let expire = |at, condition| Program::Expire {
        key: b"k".to_vec(),
        at,
        condition,
    };
    let always = ExpireCondition::default();
    let gt = ExpireCondition { gt: true, ..always };
    let lt = ExpireCondition { lt: true, ..always };
    let nx = ExpireCondition { nx: true, ..always };
    let xx = ExpireCondition { xx: true, ..always };
    assert_eq!(run(expire(2_000_000, always), vec![missing()]).0, ":0\r\n");
    assert_eq!(
        run(expire(2_000_000, always), vec![found("v")]),
        (":1\r\n".into(), vec![put("k", "v", Some(2_000_000))])
    );
    // No expiry counts as infinite: GT never, LT always.
    assert_eq!(run(expire(2_000_000, gt), vec![found("v")]).0, ":0\r\n");
    assert_eq!(run(expire(2_000_000, lt), vec![found("v")]).0, ":1\r\n");
    assert_eq!(
        run(expire(3_000_000, gt), vec![expiring("v", 2_000_000)]).0,
        ":1\r\n"
    );
    assert_eq!(
        run(expire(3_000_000, lt), vec![expiring("v", 2_000_000)]).0,
        ":0\r\n"
    );
    assert_eq!(
        run(expire(3_000_000, nx), vec![expiring("v", 2_000_000)]).0,
        ":0\r\n"
    );
    assert_eq!(run(expire(3_000_000, xx), vec![found("v")]).0, ":0\r\n");
    // A time already past deletes.
    assert_eq!(
        run(expire(-5, always), vec![found("v")]),
        (":1\r\n".into(), vec![Write::Delete { key: b"k".to_vec() }])
    );
}

#[test]
fn ttl_family_answers_minus_two_minus_one_or_the_time() {
    let ttl = |millis, absolute| Program::Ttl {
        key: b"k".to_vec(),
        query: TtlQuery { millis, absolute },
    };
    assert_eq!(run(ttl(false, false), vec![missing()]).0, ":-2\r\n");
    assert_eq!(run(ttl(false, false), vec![found("v")]).0, ":-1\r\n");
    assert_eq!(
        run(ttl(false, false), vec![expiring("v", 1_009_600)]).0,
        ":10\r\n"
    );
    assert_eq!(
        run(ttl(true, false), vec![expiring("v", 1_009_600)]).0,
        ":9600\r\n"
    );
    assert_eq!(
        run(ttl(true, true), vec![expiring("v", 1_009_600)]).0,
        ":1009600\r\n"
    );
    assert_eq!(
        run(ttl(false, true), vec![expiring("v", 1_009_600)]).0,
        ":1010\r\n"
    );
}

#[test]
fn counters_and_string_edits_keep_the_expiry() {
    // An add reads nothing and decides nothing: the replica that adds
    // answers (node/counters.rs).
    let add = Program::Add {
        key: b"k".to_vec(),
        delta: crate::counter::Delta::Int(5),
    };
    let decision = add.decide(Vec::new(), 1_000_000, false);
    assert!(decision.reply.is_empty());
    assert_eq!(decision.writes.len(), 1);
    let append = Program::Append {
        key: b"k".to_vec(),
        suffix: b"bar".to_vec(),
    };
    assert_eq!(
        run(append, vec![expiring("foo", 5)]),
        (":6\r\n".into(), vec![put("k", "foobar", Some(5))])
    );
}

#[test]
fn rename_moves_value_and_expiry_and_refuses_a_missing_source() {
    let rename = |only_new| Program::Rename {
        from: b"a".to_vec(),
        to: b"b".to_vec(),
        only_new,
    };
    assert_eq!(
        run(rename(false), vec![expiring("v", 7), missing()]),
        (
            "+OK\r\n".into(),
            vec![put("b", "v", Some(7)), Write::Delete { key: b"a".to_vec() }]
        )
    );
    assert_eq!(
        run(rename(false), vec![missing(), missing()]).0,
        "-ERR no such key\r\n"
    );
    assert_eq!(run(rename(true), vec![found("v"), found("w")]).0, ":0\r\n");
}

#[test]
fn del_queued_behind_a_program_deletes_each_key_once() {
    let del = Program::Del {
        keys: vec![b"a".to_vec(), b"a".to_vec(), b"b".to_vec()],
    };
    let (reply, writes) = run(del, vec![found("1"), found("1"), missing()]);
    assert_eq!(reply, ":1\r\n");
    assert_eq!(writes, vec![Write::Delete { key: b"a".to_vec() }]);
}
