//! Parsing of the data commands beyond plain `GET`/`SET`/`DEL`: options,
//! expiry times and numbers, with Redis's wording for every refusal.
//! Relative times (`EX`, `EXPIRE`, ...) become absolute here, from the
//! time expiries go by (the node's agreed time), which the executor passes
//! in, so a program carries one absolute
//! expiry to every replica.

use super::error::CommandError;
use super::parse::{ArgList, Command, Request};
use super::program::{Condition, ExpireCondition, LcsReply, NewExpiry, Program, TtlQuery};
use super::strings::{self, BitUnit, MAX_STRING_LEN};
use super::table::Name;
use crate::counter::Delta;

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

fn not_integer() -> CommandError {
    CommandError::refused(NOT_INTEGER)
}

fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    strings::parse_i64(arg).ok_or_else(not_integer)
}

fn upper(arg: &[u8]) -> Vec<u8> {
    arg.to_ascii_uppercase()
}

fn invalid_expire(command: &str) -> CommandError {
    CommandError::Refused(format!("ERR invalid expire time in '{command}' command").into())
}

/// An expiry given as `amount` in seconds or milliseconds, relative to
/// `now` or absolute: the absolute unix ms, or the error Redis gives for
/// one out of range (`positive`: zero and below are refused too, as `SET`
/// refuses them; `EXPIRE` takes them and deletes).
fn expiry_ms(
    amount: i64,
    millis: bool,
    absolute: bool,
    now: u64,
    positive: bool,
    command: &str,
) -> Result<i64, CommandError> {
    if positive && amount <= 0 {
        return Err(invalid_expire(command));
    }
    let ms = if millis {
        Some(amount)
    } else {
        amount.checked_mul(1000)
    };
    let at = ms.and_then(|ms| {
        if absolute {
            Some(ms)
        } else {
            ms.checked_add(now as i64)
        }
    });
    at.ok_or_else(|| invalid_expire(command))
}

/// Parses the data command `name` (not `GET`, `SET key value`, `DEL`,
/// `EXISTS`, `MGET`, `MSET`: the parser's fast path has those) at `now`
/// (the time expiries go by); `None` when `name` is not one of these.
pub(crate) fn parse(
    name: Name,
    request: Request<'_>,
    now: u64,
) -> Option<Result<Command<'_>, CommandError>> {
    let arg = |i: usize| request.get(i).unwrap_or_default();
    let key = |i: usize| arg(i).to_vec();
    let program = |p: Program| Ok(Command::Program(Box::new(p)));
    let argc = request.len();
    Some(match name {
        Name::Set => parse_set(request, now),
        Name::SetNx => program(Program::Set {
            key: key(1),
            value: key(2),
            condition: Some(Condition::Missing),
            get: false,
            expiry: NewExpiry::None,
            integer_reply: true,
        }),
        Name::GetSet => program(Program::Set {
            key: key(1),
            value: key(2),
            condition: None,
            get: true,
            expiry: NewExpiry::None,
            integer_reply: false,
        }),
        Name::SetEx | Name::PSetEx => {
            let (millis, text) = match name {
                Name::SetEx => (false, "setex"),
                _ => (true, "psetex"),
            };
            integer(arg(2))
                .and_then(|amount| expiry_ms(amount, millis, false, now, true, text))
                .map(|at| Command::Set {
                    key: arg(1),
                    value: arg(3),
                    expires_at: Some(at as u64),
                })
        }
        Name::MSetNx if argc % 2 == 1 => program(Program::MSetNx {
            pairs: (1..argc).step_by(2).map(|i| (key(i), key(i + 1))).collect(),
        }),
        Name::MSetNx => Err(CommandError::WrongArity("msetnx")),
        Name::GetDel => program(Program::GetDel { key: key(1) }),
        Name::GetEx => parse_getex(request, now).and_then(program),
        Name::Expire | Name::PExpire | Name::ExpireAt | Name::PExpireAt => {
            parse_expire(name, request, now).and_then(program)
        }
        Name::Persist => program(Program::Persist { key: key(1) }),
        Name::Ttl | Name::PTtl | Name::ExpireTime | Name::PExpireTime => {
            let query = TtlQuery {
                millis: matches!(name, Name::PTtl | Name::PExpireTime),
                absolute: matches!(name, Name::ExpireTime | Name::PExpireTime),
            };
            program(Program::Ttl { key: key(1), query })
        }
        Name::Type => program(Program::Type { key: key(1) }),
        Name::Unlink => Ok(Command::Del {
            keys: ArgList::new(request, 1),
        }),
        Name::Touch => Ok(Command::Exists {
            keys: ArgList::new(request, 1),
        }),
        Name::Append => program(Program::Append {
            key: key(1),
            suffix: key(2),
        }),
        Name::Strlen => program(Program::Strlen { key: key(1) }),
        Name::GetRange | Name::Substr => match (integer(arg(2)), integer(arg(3))) {
            (Ok(start), Ok(end)) => program(Program::GetRange {
                key: key(1),
                start,
                end,
            }),
            _ => Err(not_integer()),
        },
        Name::SetRange => match integer(arg(2)) {
            Ok(offset) if offset < 0 => Err(CommandError::refused("ERR offset is out of range")),
            Ok(offset) if offset as u64 + arg(3).len() as u64 > MAX_STRING_LEN => {
                Err(CommandError::refused(
                    "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                ))
            }
            Ok(offset) => program(Program::SetRange {
                key: key(1),
                offset: offset as u64,
                bytes: key(3),
            }),
            Err(e) => Err(e),
        },
        Name::GetBit => bit_offset(arg(2)).and_then(|offset| {
            program(Program::GetBit {
                key: key(1),
                offset,
            })
        }),
        Name::SetBit => bit_offset(arg(2)).and_then(|offset| {
            let bit = match arg(3) {
                b"0" => false,
                b"1" => true,
                _ => {
                    return Err(CommandError::refused(
                        "ERR bit is not an integer or out of range",
                    ))
                }
            };
            program(Program::SetBit {
                key: key(1),
                offset,
                bit,
            })
        }),
        Name::BitCount => parse_bitcount(request).and_then(program),
        Name::BitPos => parse_bitpos(request).and_then(program),
        Name::Lcs => parse_lcs(request).and_then(program),
        Name::Incr | Name::Decr => Ok(Command::Add {
            key: arg(1),
            delta: Delta::Int(if name == Name::Incr { 1 } else { -1 }),
        }),
        Name::IncrBy => integer(arg(2)).map(|delta| Command::Add {
            key: arg(1),
            delta: Delta::Int(delta),
        }),
        Name::DecrBy => match integer(arg(2)) {
            Ok(i64::MIN) => Err(CommandError::refused("ERR decrement would overflow")),
            Ok(delta) => Ok(Command::Add {
                key: arg(1),
                delta: Delta::Int(-delta),
            }),
            Err(e) => Err(e),
        },
        Name::IncrByFloat => match strings::parse_f64(arg(2)) {
            Some(delta) if delta.is_finite() => Ok(Command::Add {
                key: arg(1),
                delta: Delta::Float(delta),
            }),
            Some(_) => Err(CommandError::refused(
                "ERR increment would produce NaN or Infinity",
            )),
            None => Err(CommandError::refused("ERR value is not a valid float")),
        },
        Name::Rename | Name::RenameNx => program(Program::Rename {
            from: key(1),
            to: key(2),
            only_new: name == Name::RenameNx,
        }),
        Name::Copy => parse_copy(request).and_then(program),
        Name::DkvDelIfEq => program(Program::DelIfEq {
            key: key(1),
            value: key(2),
        }),
        Name::DkvPExpireIfEq => {
            let add = match request.get(4).map(upper).as_deref() {
                None => false,
                Some(b"ADD") if argc == 5 => true,
                Some(_) => return Some(Err(CommandError::Syntax)),
            };
            match integer(arg(3)) {
                Ok(ms) if ms > 0 => program(Program::PExpireIfEq {
                    key: key(1),
                    value: key(2),
                    ms: ms as u64,
                    add,
                }),
                Ok(_) => Err(invalid_expire("dkv.pexpireifeq")),
                Err(e) => Err(e),
            }
        }
        Name::Eval | Name::EvalSha | Name::Script => Err(CommandError::refused(
            "ERR dkv does not run Lua scripts (EVAL, EVALSHA, SCRIPT); use the commands directly",
        )),
        _ => return None,
    })
}

fn bit_offset(arg: &[u8]) -> Result<u64, CommandError> {
    match strings::parse_i64(arg) {
        Some(offset) if offset >= 0 && (offset as u64) < MAX_STRING_LEN * 8 => Ok(offset as u64),
        _ => Err(CommandError::refused(
            "ERR bit offset is not an integer or out of range",
        )),
    }
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`: a
/// blind write unless a condition, `GET` or `KEEPTTL` needs the old value.
fn parse_set(request: Request<'_>, now: u64) -> Result<Command<'_>, CommandError> {
    let (key, value) = (
        request.get(1).unwrap_or_default(),
        request.get(2).unwrap_or_default(),
    );
    let mut condition = None;
    let mut get = false;
    let mut expiry = NewExpiry::None;
    let mut expiry_given = false;
    let mut i = 3;
    while let Some(option) = request.get(i) {
        let option = upper(option);
        match option.as_slice() {
            b"NX" | b"XX" if condition.is_none() => {
                condition = Some(if option == b"NX" {
                    Condition::Missing
                } else {
                    Condition::Present
                });
            }
            b"GET" => get = true,
            b"KEEPTTL" if !expiry_given => {
                expiry = NewExpiry::Keep;
                expiry_given = true;
            }
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if !expiry_given => {
                let Some(amount) = request.get(i + 1) else {
                    return Err(CommandError::Syntax);
                };
                let amount = integer(amount)?;
                let millis = option.starts_with(b"P");
                let absolute = option.ends_with(b"AT");
                let at = expiry_ms(amount, millis, absolute, now, true, "set")?;
                expiry = NewExpiry::At(at as u64);
                expiry_given = true;
                i += 1;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    if condition.is_none() && !get && expiry != NewExpiry::Keep {
        let expires_at = match expiry {
            NewExpiry::At(at) => Some(at),
            _ => None,
        };
        return Ok(Command::Set {
            key,
            value,
            expires_at,
        });
    }
    Ok(Command::Program(Box::new(Program::Set {
        key: key.to_vec(),
        value: value.to_vec(),
        condition,
        get,
        expiry,
        integer_reply: false,
    })))
}

fn parse_getex(request: Request<'_>, now: u64) -> Result<Program, CommandError> {
    let key = request.get(1).unwrap_or_default().to_vec();
    let option = request.get(2).map(upper);
    let change = match (option.as_deref(), request.len()) {
        (None, _) => None,
        (Some(b"PERSIST"), 3) => Some(NewExpiry::None),
        (Some(o @ (b"EX" | b"PX" | b"EXAT" | b"PXAT")), 4) => {
            let amount = integer(request.get(3).unwrap_or_default())?;
            let at = expiry_ms(
                amount,
                o.starts_with(b"P"),
                o.ends_with(b"AT"),
                now,
                true,
                "getex",
            )?;
            Some(NewExpiry::At(at as u64))
        }
        _ => return Err(CommandError::Syntax),
    };
    Ok(Program::GetEx { key, change })
}

fn parse_expire(name: Name, request: Request<'_>, now: u64) -> Result<Program, CommandError> {
    let (millis, absolute, text) = match name {
        Name::Expire => (false, false, "expire"),
        Name::PExpire => (true, false, "pexpire"),
        Name::ExpireAt => (false, true, "expireat"),
        _ => (true, true, "pexpireat"),
    };
    let amount = integer(request.get(2).unwrap_or_default())?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in (3..request.len()).filter_map(|i| request.get(i)) {
        match upper(option).as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return Err(CommandError::Refused(
                    format!("ERR Unsupported option {}", String::from_utf8_lossy(option)).into(),
                ))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CommandError::refused(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CommandError::refused(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let at = expiry_ms(amount, millis, absolute, now, false, text)?;
    Ok(Program::Expire {
        key: request.get(1).unwrap_or_default().to_vec(),
        at,
        condition: ExpireCondition { nx, xx, gt, lt },
    })
}

fn unit(arg: Option<&[u8]>) -> Result<BitUnit, CommandError> {
    match arg.map(upper).as_deref() {
        None | Some(b"BYTE") => Ok(BitUnit::Byte),
        Some(b"BIT") => Ok(BitUnit::Bit),
        Some(_) => Err(CommandError::Syntax),
    }
}

fn parse_bitcount(request: Request<'_>) -> Result<Program, CommandError> {
    let key = request.get(1).unwrap_or_default().to_vec();
    let range = match request.len() {
        2 => None,
        4 | 5 => {
            let start = integer(request.get(2).unwrap_or_default())?;
            let end = integer(request.get(3).unwrap_or_default())?;
            Some((start, end, unit(request.get(4))?))
        }
        _ => return Err(CommandError::Syntax),
    };
    Ok(Program::BitCount { key, range })
}

fn parse_bitpos(request: Request<'_>) -> Result<Program, CommandError> {
    let key = request.get(1).unwrap_or_default().to_vec();
    let bit = match request.get(2).unwrap_or_default() {
        b"0" => false,
        b"1" => true,
        _ => {
            return Err(CommandError::refused(
                "ERR The bit argument must be 1 or 0.",
            ))
        }
    };
    if request.len() > 6 {
        return Err(CommandError::Syntax);
    }
    let start = request.get(3).map(integer).transpose()?;
    let end = request.get(4).map(integer).transpose()?;
    let unit = unit(request.get(5))?;
    Ok(Program::BitPos {
        key,
        bit,
        start,
        end,
        unit,
    })
}

fn parse_lcs(request: Request<'_>) -> Result<Program, CommandError> {
    let (mut len, mut idx, mut with_len, mut min_len) = (false, false, false, 0usize);
    let mut i = 3;
    while let Some(option) = request.get(i) {
        match upper(option).as_slice() {
            b"LEN" => len = true,
            b"IDX" => idx = true,
            b"WITHMATCHLEN" => with_len = true,
            b"MINMATCHLEN" => {
                let n = integer(request.get(i + 1).ok_or(CommandError::Syntax)?)?;
                min_len = n.max(0) as usize;
                i += 1;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    if len && idx {
        return Err(CommandError::refused(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let reply = match (len, idx) {
        (true, _) => LcsReply::Len,
        (_, true) => LcsReply::Idx { min_len, with_len },
        _ => LcsReply::String,
    };
    Ok(Program::Lcs {
        a: request.get(1).unwrap_or_default().to_vec(),
        b: request.get(2).unwrap_or_default().to_vec(),
        reply,
    })
}

fn parse_copy(request: Request<'_>) -> Result<Program, CommandError> {
    let mut replace = false;
    let mut i = 3;
    while let Some(option) = request.get(i) {
        match upper(option).as_slice() {
            b"REPLACE" => replace = true,
            b"DB" => {
                let db = integer(request.get(i + 1).ok_or(CommandError::Syntax)?)?;
                if db != 0 {
                    return Err(CommandError::refused("ERR DB index is out of range"));
                }
                i += 1;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    Ok(Program::Copy {
        from: request.get(1).unwrap_or_default().to_vec(),
        to: request.get(2).unwrap_or_default().to_vec(),
        replace,
    })
}
