use proptest::prelude::*;

use super::*;

fn actor(node: u32, epoch: u64) -> Actor {
    Actor {
        node: NodeId(node),
        epoch,
    }
}

#[test]
fn increments_from_a_base_and_renders_as_redis_does() {
    let mut c = Counter::start(Some(b"10"), Delta::Int(1)).unwrap();
    assert_eq!(c.add(actor(1, 1), Delta::Int(5)), Ok(CounterValue::Int(15)));
    assert_eq!(
        c.add(actor(1, 1), Delta::Int(-20)),
        Ok(CounterValue::Int(-5))
    );
    assert_eq!(c.value().render(), b"-5");
    let back = Counter::decode(&c.encode()).unwrap();
    assert_eq!(back, c);

    let mut f = Counter::start(Some(b"10.5"), Delta::Float(0.1)).unwrap();
    assert_eq!(
        f.add(actor(2, 9), Delta::Float(0.1)),
        Ok(CounterValue::Float(10.6))
    );
    assert_eq!(f.value().render(), b"10.6");
    assert_eq!(Counter::decode(&f.encode()).unwrap(), f);
}

#[test]
fn refuses_what_redis_refuses() {
    assert_eq!(
        Counter::start(Some(b"x"), Delta::Int(1)),
        Err(CounterError::NotInteger)
    );
    assert_eq!(
        Counter::start(Some(b"1.5"), Delta::Int(1)),
        Err(CounterError::NotInteger)
    );
    assert_eq!(
        Counter::start(Some(b"abc"), Delta::Float(1.0)),
        Err(CounterError::NotFloat)
    );
    let mut c = Counter::start(Some(b"9223372036854775806"), Delta::Int(1)).unwrap();
    assert!(c.add(actor(1, 1), Delta::Int(1)).is_ok());
    assert_eq!(
        c.add(actor(1, 1), Delta::Int(1)),
        Err(CounterError::Overflow)
    );
    // A refused add leaves no slot behind.
    let mut d = Counter::start(Some(b"9223372036854775807"), Delta::Int(1)).unwrap();
    assert_eq!(
        d.add(actor(3, 1), Delta::Int(1)),
        Err(CounterError::Overflow)
    );
    assert_eq!(d.encode().len(), HEADER_LEN);
    let mut f = Counter::start(None, Delta::Float(1.0)).unwrap();
    assert_eq!(
        f.add(actor(1, 1), Delta::Float(f64::MAX)),
        Ok(CounterValue::Float(f64::MAX))
    );
    assert_eq!(
        f.add(actor(1, 1), Delta::Float(f64::MAX)),
        Err(CounterError::NotFinite)
    );
    assert!(!f.takes(Delta::Int(1)) && f.takes(Delta::Float(1.0)));
}

#[test]
fn malformed_states_are_refused() {
    let mut good = Counter::start(None, Delta::Int(1)).unwrap();
    good.add(actor(1, 1), Delta::Int(1)).unwrap();
    good.add(actor(2, 1), Delta::Int(1)).unwrap();
    let bytes = good.encode();
    assert!(Counter::decode(&bytes[..5]).is_err());
    assert!(Counter::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut kind = bytes.clone();
    kind[0] = 9;
    assert!(Counter::decode(&kind).is_err());
    // Two slots swapped: out of order.
    let mut swapped = bytes[..HEADER_LEN].to_vec();
    swapped.extend_from_slice(&bytes[HEADER_LEN + SLOT_LEN..]);
    swapped.extend_from_slice(&bytes[HEADER_LEN..HEADER_LEN + SLOT_LEN]);
    assert!(Counter::decode(&swapped).is_err());
    let mut many = bytes[..HEADER_LEN].to_vec();
    many[9..11].copy_from_slice(&((MAX_ACTORS + 1) as u16).to_le_bytes());
    assert!(Counter::decode(&many).is_err());
    assert_eq!(render_encoded(b"junk"), b"");
    assert_eq!(merge_encoded(&bytes, b"junk"), None);
}

#[test]
fn concurrent_increments_by_different_actors_all_count() {
    let start = Counter::start(Some(b"100"), Delta::Int(1)).unwrap();
    let (mut a, mut b) = (start.clone(), start);
    a.add(actor(1, 1), Delta::Int(3)).unwrap();
    b.add(actor(2, 1), Delta::Int(-1)).unwrap();
    b.add(actor(2, 1), Delta::Int(10)).unwrap();
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(ab, ba);
    assert_eq!(ab.value(), CounterValue::Int(112));
    // An older copy of one actor's slot does not take anything back.
    let mut stale = Counter::start(Some(b"100"), Delta::Int(1)).unwrap();
    stale.add(actor(2, 1), Delta::Int(-1)).unwrap();
    ab.merge(&stale);
    assert_eq!(ab.value(), CounterValue::Int(112));
}

fn history() -> impl Strategy<Value = Vec<(u32, i64)>> {
    prop::collection::vec((1u32..5, -1000i64..1000), 0..40)
}

/// Replays `ops` on per-actor copies, returning every state any copy
/// passed through.
fn states(ops: &[(u32, i64)]) -> (Vec<Counter>, i128) {
    let start = Counter::start(None, Delta::Int(1)).unwrap();
    let mut copies: Vec<Counter> = (0..5).map(|_| start.clone()).collect();
    let mut seen = vec![start];
    let mut total = 0i128;
    for &(node, delta) in ops {
        let copy = &mut copies[node as usize];
        copy.add(actor(node, 7), Delta::Int(delta)).unwrap();
        total += i128::from(delta);
        seen.push(copy.clone());
    }
    (seen, total)
}

proptest! {
    #[test]
    fn merge_is_commutative_associative_and_idempotent(ops in history(), picks in prop::collection::vec(any::<prop::sample::Index>(), 3)) {
        let (seen, _) = states(&ops);
        let pick = |i: &prop::sample::Index| seen[i.index(seen.len())].clone();
        let (x, y, z) = (pick(&picks[0]), pick(&picks[1]), pick(&picks[2]));
        let merged = |a: &Counter, b: &Counter| { let mut m = a.clone(); m.merge(b); m };
        prop_assert_eq!(merged(&x, &y), merged(&y, &x));
        prop_assert_eq!(merged(&merged(&x, &y), &z), merged(&x, &merged(&y, &z)));
        prop_assert_eq!(merged(&x, &x), x.clone());
    }

    #[test]
    fn merging_every_copy_counts_every_increment_once(ops in history(), order in any::<u64>()) {
        let (mut seen, total) = states(&ops);
        // Merge every state any copy passed through, in a shuffled order.
        let mut seed = order;
        for i in (1..seen.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seen.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let mut all = seen[0].clone();
        for state in &seen[1..] {
            all.merge(state);
        }
        prop_assert_eq!(all.value(), CounterValue::Int(total));
        prop_assert_eq!(Counter::decode(&all.encode()).unwrap(), all);
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(counter) = Counter::decode(&bytes) {
            prop_assert_eq!(counter.encode(), bytes);
        }
    }
}
