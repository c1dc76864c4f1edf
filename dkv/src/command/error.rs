//! [`CommandError`]: why a command was refused before it ran, in Redis's
//! words. Its `Display` is the RESP error line, code first, so a client
//! sees exactly what redis-server would have said.

use std::borrow::Cow;

/// A command refused by the command layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// No such command.
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    Unknown {
        /// The name as sent (shortened).
        name: String,
        /// The first arguments, each quoted and followed by a space.
        args: String,
    },
    /// The argument count does not fit the command's arity.
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(&'static str),
    /// The arguments do not form a valid command.
    #[error("ERR syntax error")]
    Syntax,
    /// A password is set and the connection has not authenticated.
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    /// Any other refusal: the whole error line.
    #[error("{0}")]
    Refused(Cow<'static, str>),
}

impl CommandError {
    /// A refusal with a fixed error line.
    pub fn refused(line: &'static str) -> CommandError {
        CommandError::Refused(Cow::Borrowed(line))
    }

    /// The error for an unknown command, shown as Redis shows it: the name
    /// and the first few arguments, each cut short.
    pub fn unknown(name: &[u8], args: impl Iterator<Item = impl AsRef<[u8]>>) -> CommandError {
        let name: String = String::from_utf8_lossy(name).chars().take(128).collect();
        let mut shown = String::new();
        for arg in args.take(8) {
            let arg: String = String::from_utf8_lossy(arg.as_ref())
                .chars()
                .take(64)
                .collect();
            shown.push('\'');
            shown.push_str(&arg);
            shown.push_str("' ");
        }
        CommandError::Unknown { name, args: shown }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_redis_writes_them() {
        assert_eq!(
            CommandError::unknown(b"FLUSHALL", [b"now"].iter()).to_string(),
            "ERR unknown command 'FLUSHALL', with args beginning with: 'now' "
        );
        assert_eq!(
            CommandError::WrongArity("get").to_string(),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            CommandError::NoAuth.to_string(),
            "NOAUTH Authentication required."
        );
    }
}
