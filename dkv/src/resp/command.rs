//! [`Command`]: the arguments of one client request, binary-safe.
//!
//! All arguments live in one byte buffer with a table of end offsets, so a
//! parsed command costs one allocation when it has at most
//! [`INLINE_ENDS`] arguments (the table is kept in place) and two past
//! that, and the whole command can be handed to a worker thread as one
//! value. Invariant: the ends are non-decreasing and the last (if any)
//! equals `data.len()`; argument `i` is `data[end(i - 1)..end(i)]` (with
//! `end(-1) = 0`).

use std::fmt;
use std::hash::{Hash, Hasher};

/// How many argument ends a command keeps without a table of its own.
const INLINE_ENDS: usize = 4;

/// The end offsets of a command's arguments.
#[derive(Clone, Debug)]
enum Ends {
    /// The first `len` of `at`; every end fits a u32.
    Inline {
        len: u8,
        at: [u32; INLINE_ENDS],
    },
    Spilled(Vec<usize>),
}

impl Default for Ends {
    fn default() -> Ends {
        Ends::Inline {
            len: 0,
            at: [0; INLINE_ENDS],
        }
    }
}

impl Ends {
    fn with_capacity(args: usize) -> Ends {
        match args <= INLINE_ENDS {
            true => Ends::default(),
            false => Ends::Spilled(Vec::with_capacity(args)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Ends::Inline { len, .. } => usize::from(*len),
            Ends::Spilled(ends) => ends.len(),
        }
    }

    fn get(&self, index: usize) -> Option<usize> {
        match self {
            Ends::Inline { len, at } => at[..usize::from(*len)].get(index).map(|&e| e as usize),
            Ends::Spilled(ends) => ends.get(index).copied(),
        }
    }

    fn push(&mut self, end: usize) {
        debug_assert!(self.len() == 0 || self.get(self.len() - 1) <= Some(end));
        if let Ends::Inline { len, at } = self {
            let index = usize::from(*len);
            match u32::try_from(end) {
                Ok(end) if index < INLINE_ENDS => {
                    at[index] = end;
                    *len += 1;
                    return;
                }
                _ => {
                    let mut spilled = Vec::with_capacity(2 * INLINE_ENDS);
                    spilled.extend(at[..index].iter().map(|&e| e as usize));
                    *self = Ends::Spilled(spilled);
                }
            }
        }
        if let Ends::Spilled(ends) = self {
            ends.push(end);
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// The arguments of one request, the command name first (`GET`, `key`).
#[derive(Clone, Default)]
pub struct Command {
    data: Vec<u8>,
    ends: Ends,
}

impl PartialEq for Command {
    fn eq(&self, other: &Command) -> bool {
        self.data == other.data && self.ends.iter().eq(other.ends.iter())
    }
}

impl Eq for Command {}

impl Hash for Command {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.data.hash(state);
        state.write_usize(self.ends.len());
        for end in self.ends.iter() {
            state.write_usize(end);
        }
    }
}

impl Command {
    /// An empty command, to be filled with [`Command::push`].
    pub fn new() -> Command {
        Command::default()
    }

    /// An empty command with room for `args` arguments of `bytes` bytes in
    /// total.
    pub fn with_capacity(args: usize, bytes: usize) -> Command {
        Command {
            data: Vec::with_capacity(bytes),
            ends: Ends::with_capacity(args),
        }
    }

    /// A command from a list of arguments, e.g. `Command::from_args(["SET", "k", "v"])`.
    pub fn from_args<I, A>(args: I) -> Command
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let mut command = Command::new();
        for arg in args {
            command.push(arg.as_ref());
        }
        command
    }

    /// Appends one argument.
    pub fn push(&mut self, arg: &[u8]) {
        self.data.extend_from_slice(arg);
        self.ends.push(self.data.len());
    }

    /// Appends one byte to a last argument still being built (see
    /// [`Command::end_arg`]); used by the inline splitter.
    pub(crate) fn push_byte(&mut self, byte: u8) {
        self.data.push(byte);
    }

    /// Ends the argument made of the bytes pushed since the previous one.
    pub(crate) fn end_arg(&mut self) {
        self.ends.push(self.data.len());
    }

    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no arguments at all.
    pub fn is_empty(&self) -> bool {
        self.ends.len() == 0
    }

    /// Argument `index` (0 is the command name), or `None` past the end.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let end = self.ends.get(index)?;
        let start = match index {
            0 => 0,
            _ => self.ends.get(index - 1)?,
        };
        self.data.get(start..end)
    }

    /// The command name as sent (not case-folded), or `None` if empty.
    pub fn name(&self) -> Option<&[u8]> {
        self.get(0)
    }

    /// The arguments in order.
    pub fn iter(&self) -> Args<'_> {
        Args {
            command: self,
            index: 0,
        }
    }

    /// Total bytes of all arguments.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// The arguments copied into separate vectors.
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

/// Iterator over a [`Command`]'s arguments.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    command: &'a Command,
    index: usize,
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let arg = self.command.get(self.index)?;
        self.index += 1;
        Some(arg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.command.len().saturating_sub(self.index);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Args<'_> {}

impl<'a> IntoIterator for &'a Command {
    type Item = &'a [u8];
    type IntoIter = Args<'a>;

    fn into_iter(self) -> Args<'a> {
        self.iter()
    }
}

impl fmt::Debug for Command {
    /// Arguments as escaped byte strings: `Command["SET", "k", "\x00"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Command[")?;
        for (i, arg) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{}\"", arg.escape_ascii())?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip_including_empty_and_binary() {
        let args: [&[u8]; 4] = [b"SET", b"", b"\x00\r\n\xff", b"v"];
        let command = Command::from_args(args);
        assert_eq!(command.len(), 4);
        assert_eq!(command.name(), Some(&b"SET"[..]));
        assert_eq!(command.get(1), Some(&b""[..]));
        assert_eq!(command.get(2), Some(&b"\x00\r\n\xff"[..]));
        assert_eq!(command.get(4), None);
        assert_eq!(command.iter().collect::<Vec<_>>(), args);
        assert_eq!(command.iter().len(), 4);
        assert_eq!(command.data_len(), 8);
        assert_eq!(
            format!("{command:?}"),
            r#"Command["SET", "", "\x00\r\n\xff", "v"]"#
        );
    }

    #[test]
    fn commands_past_the_inline_table_are_whole_and_equal_however_built() {
        for count in 0..3 * INLINE_ENDS {
            let args: Vec<Vec<u8>> = (0..count).map(|i| vec![b'a' + i as u8; i]).collect();
            let pushed = Command::from_args(&args);
            let mut sized = Command::with_capacity(count, 0);
            for arg in &args {
                sized.push(arg);
            }
            let mut guessed = Command::with_capacity(INLINE_ENDS + 1, 0);
            for arg in &args {
                guessed.push(arg);
            }
            for command in [&pushed, &sized, &guessed] {
                assert_eq!(command.len(), count);
                assert_eq!(command.to_vecs(), args);
                assert_eq!(command.get(count), None);
            }
            assert_eq!(pushed, sized);
            assert_eq!(pushed, guessed);
            let hash = |c: &Command| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                c.hash(&mut hasher);
                hasher.finish()
            };
            assert_eq!(hash(&pushed), hash(&guessed));
        }
    }

    #[test]
    fn empty_command() {
        let command = Command::new();
        assert!(command.is_empty());
        assert_eq!(command.name(), None);
        assert_eq!(command.iter().count(), 0);
    }
}
