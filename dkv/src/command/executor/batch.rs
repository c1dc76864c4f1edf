//! `MULTI`/`EXEC` in the executor: commands queued while a transaction is
//! open, and an `EXEC` that runs them one after another, each started once
//! the one before it has answered, collecting their replies into one
//! array.

use std::collections::VecDeque;

use super::{Call, CallId, CallKind, CallStart, Executed, Executor, Results};
use crate::command::error::CommandError;
use crate::command::parse::Request;
use crate::command::session::Session;
use crate::command::table::{Name, Spec};
use crate::node::Disk;
use crate::resp::{self, reply as resp_reply};
use crate::slab::Key;

/// An `EXEC` in progress.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Commands not yet started.
    commands: VecDeque<resp::Command>,
    /// The replies so far, back to back.
    replies: Vec<u8>,
    /// How many commands the transaction holds.
    total: usize,
    /// The connection's session as `EXEC` found it; commands in the
    /// transaction run with it (and change it only for each other).
    session: Option<Session>,
}

impl Batch {
    /// The `EXEC` reply: an array of every command's reply.
    pub fn render(&self, out: &mut Vec<u8>) {
        resp_reply::array(out, self.total);
        out.extend_from_slice(&self.replies);
    }
}

impl<D: Disk> Executor<D> {
    /// A request on a connection with an open transaction: queued and
    /// answered `+QUEUED`, refused (which fails the transaction), or
    /// `None` for the commands that act on the transaction itself.
    pub(super) fn queue_in_transaction(
        &mut self,
        session: &mut Session,
        spec: &Result<&'static Spec, CommandError>,
        request: Request<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Executed> {
        let transaction = session.transaction.as_mut()?;
        let refuse = |out: &mut Vec<u8>, line: &str| {
            resp_reply::error_line(out, line);
            Some(Executed::Answered)
        };
        match spec {
            Err(error) => {
                transaction.fail();
                refuse(out, &error.to_string())
            }
            Ok(spec) => match spec.name {
                Name::Exec => None,
                Name::Discard => {
                    session.transaction = None;
                    resp_reply::ok(out);
                    Some(Executed::Answered)
                }
                Name::Multi => refuse(out, "ERR MULTI calls can not be nested"),
                Name::Watch => refuse(out, "ERR WATCH inside MULTI is not allowed"),
                Name::Quit => None,
                _ => {
                    if transaction.queue(&request.to_command()) {
                        resp_reply::simple(out, "QUEUED");
                        Some(Executed::Answered)
                    } else {
                        refuse(
                            out,
                            "ERR the transaction is too large (over 100,000 commands or 256 MiB); it will be discarded",
                        )
                    }
                }
            },
        }
    }

    /// `EXEC`: runs the transaction's commands in order.
    pub(super) fn exec(&mut self, start: CallStart<'_>, session: &mut Session) -> Executed {
        let Some(transaction) = session.transaction.take() else {
            resp_reply::error_line(start.out, "ERR EXEC without MULTI");
            return Executed::Answered;
        };
        let Some(commands) = transaction.into_commands() else {
            resp_reply::error_line(
                start.out,
                "EXECABORT Transaction discarded because of previous errors.",
            );
            return Executed::Answered;
        };
        let batch = Batch {
            total: commands.len(),
            commands: commands.into(),
            replies: Vec::new(),
            session: Some(session.clone()),
        };
        let key = self.calls.insert(Call {
            conn: start.conn,
            kind: CallKind::Batch(Box::new(batch)),
            resp3: start.resp3,
            results: Results::One(None),
            remaining: 0,
            started: None,
        });
        if self.drive_batch(key) {
            if let Some(call) = self.calls.remove(key) {
                call.render(start.out);
            }
            Executed::Answered
        } else {
            Executed::Pending(CallId(key.to_u64()))
        }
    }

    /// Runs the batch's next commands until one must wait; true once every
    /// command has answered.
    fn drive_batch(&mut self, key: Key) -> bool {
        loop {
            let Some(Call {
                conn,
                kind: CallKind::Batch(batch),
                ..
            }) = self.calls.get_mut(key)
            else {
                return false;
            };
            let conn = *conn;
            let Some(command) = batch.commands.pop_front() else {
                return true;
            };
            let Some(mut session) = batch.session.take() else {
                return false;
            };
            let mut reply = Vec::new();
            let executed = self.execute(self.now, conn, &mut session, &command, &mut reply);
            let Some(Call {
                kind: CallKind::Batch(batch),
                ..
            }) = self.calls.get_mut(key)
            else {
                return false;
            };
            batch.session = Some(session);
            match executed {
                Executed::Answered | Executed::Close => batch.replies.extend_from_slice(&reply),
                Executed::Pending(call) => {
                    self.batch_parent.insert(Key::from_u64(call.0), key);
                    return false;
                }
            }
        }
    }

    /// A command of a batch finished: its reply joins the batch's.
    pub(super) fn batch_part_done(&mut self, parent: Key, call: Call) {
        let started = call.started;
        let mut reply = Vec::new();
        call.render(&mut reply);
        self.record_finished(started, &reply);
        if let Some(Call {
            kind: CallKind::Batch(batch),
            ..
        }) = self.calls.get_mut(parent)
        {
            batch.replies.extend_from_slice(&reply);
            self.ready_batches.push_back(parent);
        }
    }

    /// Goes on with the batches whose waiting command finished; a batch
    /// that completes joins the completions. Not re-entered: the commands
    /// it runs collect their own outputs, and batches they make ready wait
    /// for this loop.
    pub(super) fn drive_ready_batches(&mut self) {
        if self.driving_batches {
            return;
        }
        self.driving_batches = true;
        while let Some(key) = self.ready_batches.pop_front() {
            if !self.drive_batch(key) {
                continue;
            }
            if let Some(call) = self.calls.remove(key) {
                self.complete(call, CallId(key.to_u64()));
            }
        }
        self.driving_batches = false;
    }
}
