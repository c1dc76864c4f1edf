//! Counters that lose no increment: the state-based PN-counter behind
//! `INCR`, `INCRBY`, `DECR`, `DECRBY` and `INCRBYFLOAT`.
//!
//! A counter is a base (the value it was built on: the integer or float a
//! `SET` left, or 0) plus one slot per [`Actor`], each holding the sum of
//! that actor's increments (`up`) and decrements (`down`). Both only grow,
//! and only their actor writes them, so two copies merge by taking the
//! larger `up` and `down` of every slot: merging is commutative,
//! associative and idempotent, and every increment any copy has seen
//! counts exactly once. The value is `base + Σup − Σdown`.
//!
//! An actor is a node in one run (its id and the stamp its clock gave when
//! it started): only that node, only in that run, adds to its slot, and it
//! does so from its own copy in memory, so a slot never goes back even
//! when the node's last writes before a crash were not durable. A node
//! that restarts is a new actor.
//!
//! Integer and float counters are distinct kinds: a float slot keeps its
//! sums as `f64` bits, which for non-negative finite floats order as the
//! numbers do, so the same max merge holds. Turning one kind into the
//! other is an assignment (a new base), made by the caller.
//!
//! The encoding (the entry's value bytes when it is a counter), little
//! endian: kind `u8` (1 integer, 2 float), base `u64` (an `i64` or `f64`
//! bits), slot count `u16`, then per slot, sorted by actor: node `u32`,
//! epoch `u64`, up `u64`, down `u64`.

use std::fmt;

use crate::version::NodeId;

/// Slots a counter holds at most: one per node per run that added to it.
pub const MAX_ACTORS: usize = 1024;

const KIND_INT: u8 = 1;
const KIND_FLOAT: u8 = 2;
const HEADER_LEN: usize = 1 + 8 + 2;
const SLOT_LEN: usize = 4 + 8 + 8 + 8;

/// Who adds to a slot: a node, in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Actor {
    /// The node.
    pub node: NodeId,
    /// Tells the node's runs apart: its clock's stamp when it started.
    pub epoch: u64,
}

/// An increment (negative: a decrement).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delta {
    /// `INCRBY` and friends.
    Int(i64),
    /// `INCRBYFLOAT`: always finite (parsing and the peer codec refuse
    /// others), which makes the equality below an equivalence.
    Float(f64),
}

impl Eq for Delta {}

/// A counter's value, as a reader sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CounterValue {
    /// An integer counter. Wider than `i64`: concurrent increments through
    /// different nodes may pass its range together, though no one of them
    /// is allowed to.
    Int(i128),
    /// A float counter.
    Float(f64),
}

impl CounterValue {
    /// The value as Redis renders it (`GET` reads this).
    pub fn render(self) -> Vec<u8> {
        match self {
            CounterValue::Int(n) => n.to_string().into_bytes(),
            CounterValue::Float(x) => format_f64(x).into_bytes(),
        }
    }
}

/// Why an increment was refused; `Display` is Redis's error line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    /// `INCR` on a value that is not an integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// `INCRBYFLOAT` on a value that is not a number.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// The result would not fit an `i64`.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// The float result would be NaN or infinite.
    #[error("ERR increment would produce NaN or Infinity")]
    NotFinite,
    /// [`MAX_ACTORS`] slots are taken.
    #[error("ERR this counter has been added to by {MAX_ACTORS} node runs, its most; SET it to start over")]
    TooManyActors,
    /// The replica adding to the counter could not write its copy.
    #[error("IOERR the replica adding to this counter could not write it")]
    Storage,
}

impl CounterError {
    /// The byte the peer protocol carries for this error.
    pub fn code(self) -> u8 {
        match self {
            CounterError::NotInteger => 1,
            CounterError::NotFloat => 2,
            CounterError::Overflow => 3,
            CounterError::NotFinite => 4,
            CounterError::TooManyActors => 5,
            CounterError::Storage => 6,
        }
    }

    /// The error a [`CounterError::code`] byte names.
    pub fn from_code(code: u8) -> Option<CounterError> {
        Some(match code {
            1 => CounterError::NotInteger,
            2 => CounterError::NotFloat,
            3 => CounterError::Overflow,
            4 => CounterError::NotFinite,
            5 => CounterError::TooManyActors,
            6 => CounterError::Storage,
            _ => return None,
        })
    }
}

/// A counter's encoded state did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("counter state is malformed ({0})")]
pub struct MalformedCounter(&'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    actor: Actor,
    up: u64,
    down: u64,
}

/// A decoded counter.
#[derive(Clone, PartialEq, Eq)]
pub struct Counter {
    float: bool,
    base: u64,
    /// Sorted by actor, each actor once.
    slots: Vec<Slot>,
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counter({:?}, {} slots)", self.value(), self.slots.len())
    }
}

impl Counter {
    /// A counter starting from what a key held: nothing (`None`), or a
    /// value that must read as the delta's kind of number.
    pub fn start(held: Option<&[u8]>, delta: Delta) -> Result<Counter, CounterError> {
        let (float, base) = match (delta, held) {
            (Delta::Int(_), None) => (false, 0),
            (Delta::Float(_), None) => (true, 0f64.to_bits()),
            (Delta::Int(_), Some(text)) => {
                let n = parse_i64(text).ok_or(CounterError::NotInteger)?;
                (false, n as u64)
            }
            (Delta::Float(_), Some(text)) => {
                let x = parse_f64(text).ok_or(CounterError::NotFloat)?;
                if !x.is_finite() {
                    return Err(CounterError::NotFloat);
                }
                (true, x.to_bits())
            }
        };
        Ok(Counter {
            float,
            base,
            slots: Vec::new(),
        })
    }

    /// Decodes a counter's state.
    pub fn decode(bytes: &[u8]) -> Result<Counter, MalformedCounter> {
        let header = bytes.get(..HEADER_LEN).ok_or(MalformedCounter("short"))?;
        let float = match header[0] {
            KIND_INT => false,
            KIND_FLOAT => true,
            _ => return Err(MalformedCounter("unknown kind")),
        };
        let base = u64_at(header, 1);
        let count = usize::from(u16::from_le_bytes([header[9], header[10]]));
        if count > MAX_ACTORS {
            return Err(MalformedCounter("too many slots"));
        }
        let body = &bytes[HEADER_LEN..];
        if body.len() != count * SLOT_LEN {
            return Err(MalformedCounter("length does not match its slots"));
        }
        let mut slots: Vec<Slot> = Vec::with_capacity(count);
        for raw in body.chunks_exact(SLOT_LEN) {
            let slot = Slot {
                actor: Actor {
                    node: NodeId(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
                    epoch: u64_at(raw, 4),
                },
                up: u64_at(raw, 12),
                down: u64_at(raw, 20),
            };
            if slots.last().is_some_and(|last| last.actor >= slot.actor) {
                return Err(MalformedCounter("slots out of order"));
            }
            if float && !(valid_float_sum(slot.up) && valid_float_sum(slot.down)) {
                return Err(MalformedCounter("a float slot is negative or not finite"));
            }
            slots.push(slot);
        }
        if float && !f64::from_bits(base).is_finite() {
            return Err(MalformedCounter("float base is not finite"));
        }
        Ok(Counter { float, base, slots })
    }

    /// The encoded state.
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.slots.len() <= MAX_ACTORS);
        let mut out = Vec::with_capacity(HEADER_LEN + self.slots.len() * SLOT_LEN);
        out.push(if self.float { KIND_FLOAT } else { KIND_INT });
        out.extend_from_slice(&self.base.to_le_bytes());
        out.extend_from_slice(&(self.slots.len() as u16).to_le_bytes());
        for slot in &self.slots {
            out.extend_from_slice(&slot.actor.node.0.to_le_bytes());
            out.extend_from_slice(&slot.actor.epoch.to_le_bytes());
            out.extend_from_slice(&slot.up.to_le_bytes());
            out.extend_from_slice(&slot.down.to_le_bytes());
        }
        out
    }

    /// Whether this is a float counter.
    pub fn is_float(&self) -> bool {
        self.float
    }

    /// Whether `delta` is of this counter's kind (an integer delta on an
    /// integer counter); if not, the caller starts a new counter from the
    /// rendered value, an assignment.
    pub fn takes(&self, delta: Delta) -> bool {
        matches!(delta, Delta::Float(_)) == self.float
    }

    /// The value: the base plus every slot's sum.
    pub fn value(&self) -> CounterValue {
        if self.float {
            let sum = self.slots.iter().fold(f64::from_bits(self.base), |acc, s| {
                acc + f64::from_bits(s.up) - f64::from_bits(s.down)
            });
            CounterValue::Float(sum)
        } else {
            let sum = self
                .slots
                .iter()
                .fold(i128::from(self.base as i64), |acc, s| {
                    acc + i128::from(s.up) - i128::from(s.down)
                });
            CounterValue::Int(sum)
        }
    }

    /// Adds `delta` to `actor`'s slot, as Redis would to the value this
    /// copy shows: refused when the kinds differ (the caller starts a new
    /// counter then), when the new value leaves `i64` or is not finite.
    pub fn add(&mut self, actor: Actor, delta: Delta) -> Result<CounterValue, CounterError> {
        let index = match self.slots.binary_search_by(|s| s.actor.cmp(&actor)) {
            Ok(index) => index,
            Err(index) => {
                if self.slots.len() >= MAX_ACTORS {
                    return Err(CounterError::TooManyActors);
                }
                self.slots.insert(
                    index,
                    Slot {
                        actor,
                        up: if self.float { 0f64.to_bits() } else { 0 },
                        down: if self.float { 0f64.to_bits() } else { 0 },
                    },
                );
                index
            }
        };
        let result = self.add_to_slot(index, delta);
        if result.is_err() {
            // A slot made only for this refused add holds nothing.
            let slot = self.slots[index];
            let zero = if self.float { 0f64.to_bits() } else { 0 };
            if slot.up == zero && slot.down == zero {
                self.slots.remove(index);
            }
        }
        result
    }

    fn add_to_slot(&mut self, index: usize, delta: Delta) -> Result<CounterValue, CounterError> {
        match (delta, self.value()) {
            (Delta::Int(d), CounterValue::Int(now)) => {
                let next = now + i128::from(d);
                if i64::try_from(next).is_err() {
                    return Err(CounterError::Overflow);
                }
                let slot = &mut self.slots[index];
                let (sum, by) = if d >= 0 {
                    (&mut slot.up, d.unsigned_abs())
                } else {
                    (&mut slot.down, d.unsigned_abs())
                };
                *sum = sum.checked_add(by).ok_or(CounterError::Overflow)?;
                Ok(CounterValue::Int(next))
            }
            (Delta::Float(d), CounterValue::Float(now)) => {
                let next = now + d;
                if !next.is_finite() {
                    return Err(CounterError::NotFinite);
                }
                let slot = &mut self.slots[index];
                let sum = if d >= 0.0 {
                    &mut slot.up
                } else {
                    &mut slot.down
                };
                let grown = f64::from_bits(*sum) + d.abs();
                if !grown.is_finite() {
                    return Err(CounterError::NotFinite);
                }
                *sum = grown.to_bits();
                Ok(self.value())
            }
            (Delta::Int(_), CounterValue::Float(_)) => Err(CounterError::NotInteger),
            (Delta::Float(_), CounterValue::Int(_)) => Err(CounterError::NotFloat),
        }
    }

    /// Merges `other` in: the larger sums of every slot. Two copies of one
    /// counter always share kind and base (both were built on the same
    /// write); if they do not, the larger (kind, base) wins whole, so every
    /// replica still picks the same.
    pub fn merge(&mut self, other: &Counter) {
        if (self.float, self.base) != (other.float, other.base) {
            if (other.float, other.base) > (self.float, self.base) {
                *self = other.clone();
            }
            return;
        }
        let (ours, theirs) = (&self.slots, &other.slots);
        let mut merged = Vec::with_capacity(ours.len().max(theirs.len()));
        let (mut i, mut j) = (0, 0);
        while i < ours.len() || j < theirs.len() {
            match (ours.get(i), theirs.get(j)) {
                (Some(x), Some(y)) if x.actor == y.actor => {
                    merged.push(Slot {
                        actor: x.actor,
                        up: x.up.max(y.up),
                        down: x.down.max(y.down),
                    });
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x.actor < y.actor => {
                    merged.push(*x);
                    i += 1;
                }
                (Some(x), None) => {
                    merged.push(*x);
                    i += 1;
                }
                (_, Some(y)) => {
                    merged.push(*y);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        // Both sides held at most MAX_ACTORS; their union may hold more
        // only if the cluster made more actors than one side could record,
        // and then the lowest are kept, deterministically.
        merged.truncate(MAX_ACTORS);
        self.slots = merged;
    }
}

/// Merges two encoded counter states; `None` when either is malformed
/// (the caller keeps what it holds).
pub fn merge_encoded(held: &[u8], incoming: &[u8]) -> Option<Vec<u8>> {
    let mut held = Counter::decode(held).ok()?;
    let incoming = Counter::decode(incoming).ok()?;
    held.merge(&incoming);
    Some(held.encode())
}

/// What a counter's encoded state reads as (`GET`): its rendered value,
/// or the empty string for a malformed one (never stored by this code).
pub fn render_encoded(bytes: &[u8]) -> Vec<u8> {
    Counter::decode(bytes)
        .map(|c| c.value().render())
        .unwrap_or_default()
}

fn valid_float_sum(bits: u64) -> bool {
    let x = f64::from_bits(bits);
    x.is_finite() && x >= 0.0 && bits >> 63 == 0
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// Parses a decimal `i64` as Redis's `string2ll` does: an optional `-`,
/// digits without leading zeros (`0` alone is fine), nothing else.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [] => false,
        [b'0'] => bytes.len() == 1,
        [first, ..] => (b'1'..=b'9').contains(first) && digits.iter().all(u8::is_ascii_digit),
    };
    if !canonical || bytes.len() > 20 {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Parses a float as Redis's `INCRBYFLOAT` does (`string2ld`): no spaces,
/// not NaN; an infinity parses, and the sum it makes is refused later
/// ("increment would produce NaN or Infinity").
pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.len() > 5000 || text.trim() != text {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| !v.is_nan())
}

/// Formats a float as Redis's `INCRBYFLOAT` replies: the shortest digits
/// that read back the same, no exponent, no trailing zeros.
pub fn format_f64(value: f64) -> String {
    let text = format!("{value}");
    if text == "-0" {
        "0".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests;
