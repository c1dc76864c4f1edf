//! What waited for the disk: actions held in the durability gate until
//! their log is durable ([`Node::defer`]), carried out when the runtime
//! reports progress ([`Node::handle_durable`]), or failed when the log
//! fails for good ([`Node::handle_disk_failed`]).

use crate::node::durability::Deferred;
use crate::node::{Disk, Log, Node, Now, OpError, Ticket};
use crate::peer::Message;

impl<D: Disk> Node<D> {
    /// The runtime's log reports everything in `durable.log` up to
    /// `durable.lsn` durable: releases what waited for it.
    pub fn handle_durable(&mut self, now: Now, durable: Ticket) {
        self.advance(now);
        self.gate.advance(durable);
        // One at a time, with no list to allocate: an action performed
        // here may defer another, which the loop releases too if the log
        // already covers it.
        while let Some(action) = self.gate.next_released(durable.log) {
            self.perform(action);
        }
    }

    /// The runtime's log failed for good (a refused fsync poisons it):
    /// everything waiting on it fails instead of waiting for ever.
    pub fn handle_disk_failed(&mut self, now: Now, log: Log) {
        self.advance(now);
        let mut failed = Vec::new();
        self.gate.fail(log, &mut failed);
        // Reads go on: they no longer wait for a write that will never be
        // durable in this log. What they may see beyond the durable point
        // is only the failed round's writes (the store refuses writes from
        // then on), each answered with an error; the log's recovery
        // snapshot makes them durable, a crash before it loses them.
        if log == Log::Data {
            self.data_barrier = None;
        }
        for action in failed {
            match action {
                Deferred::Ack { to, request, .. } => self.send(
                    to,
                    Message::ReplicateAck {
                        request,
                        ok: false,
                        was_live: false,
                        held: None,
                    },
                ),
                // The copy never counts; the write fails at its deadline
                // unless other replicas make its quorum.
                Deferred::OwnWrite { .. } => {}
                Deferred::Reply { op, .. } | Deferred::Value { op, .. } => {
                    self.reply(op, Err(OpError::Storage(format!("the {log:?} log failed"))))
                }
                // The coordinator times the replica out.
                Deferred::ReadReply { .. } => {}
                Deferred::OwnRead { read, .. } => self.on_read_unreachable(self.settings.id, read),
                Deferred::OwnRepair { read, .. } => {
                    self.on_repair_ack(self.settings.id, read, None)
                }
                // Anti-entropy pushes only what is durable; the next
                // exchange finds the difference again.
                Deferred::Push { .. } => {}
                // A flush acknowledgement or scan page: the asker times out.
                Deferred::Send { .. } => {}
            }
        }
    }

    /// Holds `action` until `ticket` is durable, or does it now.
    pub(super) fn defer(&mut self, ticket: Option<Ticket>, action: Deferred) {
        let ready = match ticket {
            None => Some(action),
            Some(ticket) => self.gate.defer(ticket, action),
        };
        if let Some(action) = ready {
            self.perform(action);
        }
    }

    fn perform(&mut self, action: Deferred) {
        match action {
            Deferred::Ack {
                to,
                request,
                was_live,
                held,
            } => self.send(
                to,
                Message::ReplicateAck {
                    request,
                    ok: true,
                    was_live,
                    held,
                },
            ),
            Deferred::OwnWrite {
                write,
                was_live,
                held,
            } => self.on_write_answer(self.settings.id, write, true, was_live, held),
            Deferred::Reply { op, reply } => self.reply(op, Ok(reply)),
            Deferred::ReadReply { to, request, entry } => {
                self.send(to, Message::ReadReply { request, entry })
            }
            Deferred::OwnRead { read, entry } => self.on_read_reply(self.settings.id, read, entry),
            Deferred::Value { op, entry } => {
                let reply = self.value_reply(entry);
                self.reply(op, reply);
            }
            Deferred::OwnRepair { read, held } => {
                self.on_repair_ack(self.settings.id, read, Some(held))
            }
            Deferred::Push { to, key, entry } => self.push_repair(to, key, entry),
            Deferred::Send { to, message } => self.send(to, message),
        }
    }
}
