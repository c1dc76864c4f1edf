//! The executor's side of [`Program`]s: per-key turns, reads, the
//! decision, writes.

use std::collections::{HashSet, VecDeque};

use super::{Call, CallId, CallKind, CallStart, Executed, Executor, ProgramCall, Queued, Results};
use crate::command::program::{Found, Program, Write};
use crate::node::{Consistency, Disk, Op, OpId, OpReply};
use crate::slab::Key;

impl<D: Disk> Executor<D> {
    /// Starts a program: its reads, now or once no program in flight
    /// holds any of its keys.
    pub(super) fn start_program(
        &mut self,
        start: CallStart<'_>,
        program: Program,
        read: Consistency,
        write: Consistency,
    ) -> Executed {
        let keys: Vec<Vec<u8>> = program.reads().into_iter().map(<[u8]>::to_vec).collect();
        let key = self.calls.insert(Call {
            conn: start.conn,
            kind: CallKind::Program(Box::new(ProgramCall {
                program: None,
                reply: Vec::new(),
                keys,
                write,
                deadline: start.deadline,
            })),
            resp3: start.resp3,
            results: Results::One(None),
            remaining: 0,
            started: None,
        });
        if blocked(&program, &self.locked, &self.queued) {
            self.queued.push_back(Queued {
                call: key,
                program,
                read,
            });
            return Executed::Pending(CallId(key.to_u64()));
        }
        self.read_for(key, program, read);
        if self.collect(Some((key, start.out))) {
            Executed::Answered
        } else {
            Executed::Pending(CallId(key.to_u64()))
        }
    }

    /// Takes the locks of the program of call `key` and sends its reads
    /// (an add reads nothing: it goes straight to its write).
    fn read_for(&mut self, key: Key, program: Program, read: Consistency) {
        let reads: Vec<Vec<u8>> = match program {
            Program::Add { .. } => Vec::new(),
            _ => program.reads().into_iter().map(<[u8]>::to_vec).collect(),
        };
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        let CallKind::Program(state) = &mut call.kind else {
            return;
        };
        self.locked.extend(state.keys.iter().cloned());
        state.program = Some(program);
        let deadline = state.deadline;
        call.expect(reads.len());
        if reads.is_empty() {
            self.program_step(key);
            return;
        }
        for (part, read_key) in reads.iter().enumerate() {
            let op = OpId {
                call: key.to_u64(),
                part: part as u32,
            };
            self.node
                .handle_request(self.now, op, Op::Get { key: read_key }, read, deadline);
        }
    }

    /// A program's reads are in: decides and sends its writes. True when
    /// the call goes on (writes out); false when it is done (no writes, a
    /// failed read, or its writes were the step that finished).
    pub(super) fn program_step(&mut self, key: Key) -> bool {
        let Some(call) = self.calls.get_mut(key) else {
            return false;
        };
        // Only a program whose reads are in goes on; every other call
        // (the data path's) is left as it is, untouched.
        let reading = matches!(&call.kind, CallKind::Program(state) if state.program.is_some());
        if !reading {
            return false;
        }
        let now = self.node.expiry_time(self.now.wall);
        let Some(call) = self.calls.get_mut(key) else {
            return false;
        };
        let resp3 = call.resp3;
        let results = call.take_results();
        let CallKind::Program(state) = &mut call.kind else {
            return false;
        };
        let Some(program) = state.program.take() else {
            return false;
        };
        let mut found = Vec::with_capacity(results.len());
        for result in &results {
            match result {
                Ok(OpReply::Value {
                    value, expires_at, ..
                }) => found.push(Found {
                    value: value.clone(),
                    expires_at: *expires_at,
                }),
                _ => {
                    call.results = Results::Many(results.into_iter().map(Some).collect());
                    return false;
                }
            }
        }
        #[cfg(debug_assertions)]
        let held: Vec<Vec<u8>> = program.reads().into_iter().map(<[u8]>::to_vec).collect();
        let decision = program.decide(found, now, resp3);
        #[cfg(debug_assertions)]
        debug_assert!(
            decision
                .writes
                .iter()
                .all(|w| held.iter().any(|k| k == w.key())),
            "a program writes only keys it read (and holds)"
        );
        state.reply = decision.reply;
        if decision.writes.is_empty() {
            call.results = Results::Many(Vec::new());
            return false;
        }
        let (write, deadline) = (state.write, state.deadline);
        call.expect(decision.writes.len());
        for (part, w) in decision.writes.iter().enumerate() {
            let op = OpId {
                call: key.to_u64(),
                part: part as u32,
            };
            let request = match w {
                Write::Put {
                    key,
                    value,
                    expires_at,
                } => Op::Put {
                    key,
                    value,
                    expires_at: *expires_at,
                },
                Write::Delete { key } => Op::Delete { key },
                Write::Add { key, delta } => Op::Add { key, delta: *delta },
            };
            self.node
                .handle_request(self.now, op, request, write, deadline);
        }
        true
    }

    /// Starts the queued programs whose keys are free, in order; one that
    /// shares a key with an earlier queued one keeps waiting behind it.
    pub(super) fn start_queued(&mut self) {
        let mut waiting = VecDeque::with_capacity(self.queued.len());
        while let Some(queued) = self.queued.pop_front() {
            if blocked(&queued.program, &self.locked, &waiting) {
                waiting.push_back(queued);
            } else {
                self.read_for(queued.call, queued.program, queued.read);
            }
        }
        self.queued = waiting;
    }
}

/// Whether `program` must wait: a program in flight holds one of its keys,
/// or one queued `ahead` of it touches one (a key's commands run in the
/// order they came).
fn blocked(program: &Program, locked: &HashSet<Vec<u8>>, ahead: &VecDeque<Queued>) -> bool {
    program
        .reads()
        .iter()
        .any(|k| locked.contains(*k) || ahead.iter().any(|q| q.program.reads().contains(k)))
}
