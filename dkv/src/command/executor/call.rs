//! A data command in flight: its results as they come, what they make
//! ([`CallKind`]), and the rendering of its reply once they are all in.

use std::time::Instant;

use super::{batch, ConnId};
use crate::command::program::Program;
use crate::command::reply::{self, DataKind};
use crate::node::{Consistency, OpResult};
use crate::resp::reply as resp_reply;
use crate::slab::Key;

/// One node operation's result, or the results of a command's several.
#[derive(Debug)]
pub(super) enum Results {
    One(Option<OpResult>),
    Many(Vec<Option<OpResult>>),
}

impl Results {
    /// Room for `parts` results, none in yet.
    fn awaiting(parts: usize) -> Results {
        match parts {
            1 => Results::One(None),
            n => Results::Many((0..n).map(|_| None).collect()),
        }
    }
}

/// A data command waiting for its operations.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) conn: ConnId,
    pub(super) kind: CallKind,
    pub(super) resp3: bool,
    pub(super) results: Results,
    pub(super) remaining: usize,
    /// The command's place in the table and when it was read, for its
    /// stats once it answers.
    pub(super) started: Option<(usize, Instant)>,
}

/// What a call's results make.
#[derive(Debug)]
pub(super) enum CallKind {
    /// An `EXEC`: its commands run one after another (`batch.rs`).
    Batch(Box<batch::Batch>),
    /// One operation per key, rendered by [`reply::render`].
    Data(DataKind),
    /// A program: its reads, then its writes (see [`ProgramCall`]).
    Program(Box<ProgramCall>),
}

/// A program in flight, with what it needs for its next step.
#[derive(Debug)]
pub(super) struct ProgramCall {
    /// `Some` while the reads are out; taken to decide.
    pub(super) program: Option<Program>,
    /// The reply decided on, sent once the writes are acknowledged.
    pub(super) reply: Vec<u8>,
    /// The keys it holds (see [`Executor::locked`]).
    pub(super) keys: Vec<Vec<u8>>,
    pub(super) write: Consistency,
    pub(super) deadline: Option<u64>,
}

/// A program waiting for another on one of its keys to finish.
#[derive(Debug)]
pub(super) struct Queued {
    pub(super) call: Key,
    pub(super) program: Program,
    pub(super) read: Consistency,
}

impl Call {
    /// A data call of `parts` operations, none answered yet.
    pub(super) fn data(conn: ConnId, kind: DataKind, resp3: bool, parts: usize) -> Call {
        Call {
            conn,
            kind: CallKind::Data(kind),
            resp3,
            results: Results::awaiting(parts),
            remaining: parts,
            started: None,
        }
    }

    /// Records one part's result; true once every part has one.
    pub(super) fn record(&mut self, part: u32, result: OpResult) -> bool {
        let slot = match &mut self.results {
            Results::One(slot) if part == 0 => slot,
            Results::Many(slots) => match slots.get_mut(part as usize) {
                Some(slot) => slot,
                None => return false,
            },
            Results::One(_) => return false,
        };
        if slot.is_none() {
            *slot = Some(result);
            self.remaining -= 1;
        }
        self.remaining == 0
    }

    /// The results, in part order.
    pub(super) fn take_results(&mut self) -> Vec<OpResult> {
        match std::mem::replace(&mut self.results, Results::One(None)) {
            Results::One(result) => result.into_iter().collect(),
            Results::Many(slots) => slots.into_iter().flatten().collect(),
        }
    }

    /// Makes room for `parts` new results (a program's next step).
    pub(super) fn expect(&mut self, parts: usize) {
        self.results = Results::awaiting(parts);
        self.remaining = parts;
    }

    /// Renders a data call's reply.
    pub(super) fn render(self, out: &mut Vec<u8>) {
        // One result (every single-key command) renders without a Vec.
        let many;
        let results: &[OpResult] = match self.results {
            Results::One(Some(ref result)) => std::slice::from_ref(result),
            Results::One(None) => &[],
            Results::Many(slots) => {
                many = slots.into_iter().flatten().collect::<Vec<_>>();
                &many
            }
        };
        match self.kind {
            CallKind::Data(kind) => reply::render(kind, self.resp3, results, out),
            CallKind::Batch(batch) => batch.render(out),
            CallKind::Program(program) => match results.iter().find_map(|r| r.as_ref().err()) {
                Some(error) => resp_reply::error_line(out, &error.to_string()),
                // An add answers with the value it left.
                None if program.reply.is_empty() && !results.is_empty() => {
                    reply::render_counted(results.first(), out)
                }
                None => out.extend_from_slice(&program.reply),
            },
        }
    }
}
