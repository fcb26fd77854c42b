//! The fast paths against the general paths they shortcut.
//!
//! Two identical simulated systems run the same random sequence of mailbox and
//! semaphore operations (calls, reply-receives, plain sends and receives, reply handles
//! dropped, posts, waits and post-and-waits, deadlines passing, processes exiting) from
//! two servers and three clients, with good, small and faulting buffers. System A
//! always makes the general calls. System B tries `mailbox_call_fast` /
//! `mailbox_reply_receive_fast` / `semaphore_post_wait_fast` first and makes the
//! general call only when they decline, turning what they return into the wake-up the
//! general path reports. After every step the two must agree on everything observable: the call's
//! result, the wake-ups, the ledger, `usage()`, who waits, every handle ever issued
//! (kind, rights, badge), every semaphore's units and the bytes in every process's
//! buffers.

mod sim;

use std::sync::atomic::{AtomicUsize, Ordering};

use kipc::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use sim::{PRIVATE_BASE, PRIVATE_PAGES, System};

const SERVERS: usize = 2;
const CLIENTS: usize = 3;
const PROCESSES: usize = SERVERS + CLIENTS;
const MAILBOXES: usize = 2;
const SEMAPHORES: usize = 2;

/// Where each process keeps its buffers (all in its private memory).
const RECEIVE_AT: u64 = PRIVATE_BASE;
const SEND_AT: u64 = PRIVATE_BASE + 0x1000;
const REPLY_AT: u64 = PRIVATE_BASE + 0x1800;
/// A buffer that runs off the end of private memory: any copy into or out of it faults.
const STRADDLE_AT: u64 = PRIVATE_BASE + (PRIVATE_PAGES * PAGE_SIZE) as u64 - 16;
/// Bytes compared per process after every step: the buffers above.
const WATCHED: usize = 0x2000;

/// Fast-path hand-offs over the whole property run (so it cannot hold vacuously).
static HANDOFFS: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Copy, Debug)]
enum Buf {
    Good(usize),
    Straddle,
}

#[derive(Clone, Copy, Debug)]
enum When {
    Forever,
    Within(u64),
    NoWait,
}

#[derive(Clone, Debug)]
enum Op {
    Call {
        client: usize,
        mailbox: usize,
        length: usize,
        payload: Buf,
        reply: Buf,
        when: When,
        forged: bool,
    },
    ReplyReceive {
        server: usize,
        mailbox: usize,
        length: usize,
        payload: Buf,
        buffer: Buf,
        when: When,
    },
    Receive {
        server: usize,
        mailbox: usize,
        buffer: Buf,
    },
    Send {
        client: usize,
        mailbox: usize,
        length: usize,
    },
    DropReply {
        server: usize,
    },
    Tick(u64),
    Exit {
        process: usize,
    },
    PostWait {
        process: usize,
        post: usize,
        wait: usize,
        when: When,
        forged: bool,
    },
    Post {
        process: usize,
        semaphore: usize,
    },
    Wait {
        process: usize,
        semaphore: usize,
        when: When,
    },
}

fn buf() -> impl Strategy<Value = Buf> {
    prop_oneof![
        6 => prop_oneof![Just(0usize), Just(8), Just(40), Just(64), Just(100)].prop_map(Buf::Good),
        1 => Just(Buf::Straddle),
    ]
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        6 => Just(When::Forever),
        2 => (1u64..4).prop_map(When::Within),
        1 => Just(When::NoWait),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..CLIENTS, 0..MAILBOXES, 0usize..80, buf(), buf(), when(), prop::bool::weighted(0.05))
            .prop_map(|(client, mailbox, length, payload, reply, when, forged)| Op::Call {
                client, mailbox, length, payload, reply, when, forged,
            }),
        8 => (0..SERVERS, 0..MAILBOXES, 0usize..80, buf(), buf(), when())
            .prop_map(|(server, mailbox, length, payload, buffer, when)| Op::ReplyReceive {
                server, mailbox, length, payload, buffer, when,
            }),
        2 => (0..SERVERS, 0..MAILBOXES, buf())
            .prop_map(|(server, mailbox, buffer)| Op::Receive { server, mailbox, buffer }),
        2 => (0..CLIENTS, 0..MAILBOXES, 0usize..80)
            .prop_map(|(client, mailbox, length)| Op::Send { client, mailbox, length }),
        1 => (0..SERVERS).prop_map(|server| Op::DropReply { server }),
        1 => (1u64..3).prop_map(Op::Tick),
        1 => (0..PROCESSES).prop_map(|process| Op::Exit { process }),
        6 => (0..PROCESSES, 0..SEMAPHORES, 0..SEMAPHORES, when(), prop::bool::weighted(0.05))
            .prop_map(|(process, post, wait, when, forged)| Op::PostWait {
                process, post, wait, when, forged,
            }),
        2 => (0..PROCESSES, 0..SEMAPHORES)
            .prop_map(|(process, semaphore)| Op::Post { process, semaphore }),
        3 => (0..PROCESSES, 0..SEMAPHORES, when())
            .prop_map(|(process, semaphore, when)| Op::Wait { process, semaphore, when }),
    ]
}

/// One of the two systems, with what its processes hold.
struct Side {
    system: System,
    fast: bool,
    /// Operations the fast path took.
    handoffs: usize,
    pids: Vec<ProcessId>,
    exited: Vec<bool>,
    /// `mailboxes[p][m]`: process `p`'s handle to mailbox `m` (servers: receive and
    /// send; clients: a badged send handle).
    mailboxes: Vec<Vec<Handle>>,
    /// `semaphores[p][s]`: process `p`'s handle to semaphore `s` (post and wait).
    semaphores: Vec<Vec<Handle>>,
    /// The reply handle each process last received (servers answer through it).
    replies: Vec<Option<Handle>>,
    /// Every handle value a process was ever given.
    issued: Vec<Vec<Handle>>,
}

impl Side {
    fn new(fast: bool) -> Side {
        let mut system = System::new();
        let pids: Vec<ProcessId> = (0..PROCESSES).map(|_| system.spawn()).collect();
        let mut mailboxes = vec![Vec::new(); PROCESSES];
        for _ in 0..MAILBOXES {
            let owner = pids[0];
            let handle = system.ipc.mailbox_create(owner).unwrap();
            mailboxes[0].push(handle);
            let server = system
                .ipc
                .handle_grant(owner, handle, pids[1], Rights::READ | Rights::WRITE)
                .unwrap();
            mailboxes[1].push(server);
            for client in 0..CLIENTS {
                let badged = system
                    .ipc
                    .mailbox_mint(owner, handle, Rights::WRITE, 100 + client as u64)
                    .unwrap();
                let granted = system
                    .ipc
                    .handle_grant(owner, badged, pids[SERVERS + client], Rights::WRITE)
                    .unwrap();
                system
                    .ipc
                    .handle_close(owner, badged, &mut system.machine)
                    .unwrap();
                mailboxes[SERVERS + client].push(granted);
            }
        }
        let mut semaphores = vec![Vec::new(); PROCESSES];
        for _ in 0..SEMAPHORES {
            let owner = pids[0];
            let handle = system.ipc.semaphore_create(owner, 0).unwrap();
            semaphores[0].push(handle);
            for (process, pid) in pids.iter().enumerate().skip(1) {
                let granted = system
                    .ipc
                    .handle_grant(owner, handle, *pid, Rights::SIGNAL | Rights::WAIT)
                    .unwrap();
                semaphores[process].push(granted);
            }
        }
        let issued = mailboxes
            .iter()
            .zip(&semaphores)
            .map(|(m, s)| m.iter().chain(s).copied().collect())
            .collect();
        Side {
            system,
            fast,
            handoffs: 0,
            pids,
            exited: vec![false; PROCESSES],
            mailboxes,
            semaphores,
            replies: vec![None; PROCESSES],
            issued,
        }
    }

    fn slice(&mut self, process: usize, buffer: Buf, at: u64, fill: bool) -> UserSlice {
        let pid = self.pids[process];
        match buffer {
            Buf::Good(length) => {
                if fill {
                    let bytes: Vec<u8> = (0..length)
                        .map(|i| (i as u8) ^ (process as u8 * 17))
                        .collect();
                    self.system.machine.write(pid, at, &bytes).unwrap();
                }
                self.system.machine.slice(at, length)
            }
            Buf::Straddle => self.system.machine.slice(STRADDLE_AT, 64),
        }
    }

    fn payload(&mut self, process: usize, buffer: Buf, length: usize) -> UserSlice {
        let slice = self.slice(process, buffer, SEND_AT, true);
        match buffer {
            // A payload of exactly `length` bytes, written by its sender.
            Buf::Good(_) => {
                let pid = self.pids[process];
                let bytes: Vec<u8> = (0..length)
                    .map(|i| (i as u8).wrapping_mul(3) ^ process as u8)
                    .collect();
                self.system.machine.write(pid, SEND_AT, &bytes).unwrap();
                self.system.machine.slice(SEND_AT, length)
            }
            Buf::Straddle => slice,
        }
    }

    fn blocking(&self, when: When) -> Blocking {
        match when {
            When::Forever => Blocking::Forever,
            When::Within(ticks) => Blocking::Until(self.system.machine.now + ticks),
            When::NoWait => Blocking::NonBlocking,
        }
    }

    /// Records the handles a delivered message gave its receiver.
    fn learn(&mut self, process: usize, received: &Received) {
        if let Some(reply) = received.reply {
            self.replies[process] = Some(reply);
            self.issued[process].push(reply);
        }
        self.issued[process].extend(received.handles.iter().copied());
    }

    /// Runs one operation; returns its result as text.
    fn run(&mut self, op: &Op) -> String {
        let actor = match op {
            Op::Call { client, .. } | Op::Send { client, .. } => SERVERS + client,
            Op::ReplyReceive { server, .. }
            | Op::Receive { server, .. }
            | Op::DropReply { server } => *server,
            Op::Exit { process }
            | Op::PostWait { process, .. }
            | Op::Post { process, .. }
            | Op::Wait { process, .. } => *process,
            Op::Tick(_) => usize::MAX,
        };
        if actor != usize::MAX
            && (self.exited[actor] || self.system.ipc.is_waiting(self.pids[actor]))
        {
            return "not runnable".into();
        }
        let answer = match *op {
            Op::Call {
                client,
                mailbox,
                length,
                payload,
                reply,
                when,
                forged,
            } => {
                let me = SERVERS + client;
                let handle = if forged {
                    Handle::from_raw(0x7777)
                } else {
                    self.mailboxes[me][mailbox]
                };
                let payload = self.payload(me, payload, length);
                let reply = self.slice(me, reply, REPLY_AT, false);
                let blocking = self.blocking(when);
                let pid = self.pids[me];
                let System { ipc, machine, .. } = &mut self.system;
                if self.fast
                    && let Some(handoff) =
                        ipc.mailbox_call_fast(pid, handle, payload, reply, blocking, machine)
                {
                    self.handoffs += 1;
                    machine.wake(handoff.to, handoff.wakeup());
                    Ok(Outcome::Blocked)
                } else {
                    ipc.mailbox_call(pid, handle, payload, &[], reply, blocking, machine)
                }
            }
            Op::ReplyReceive {
                server,
                mailbox,
                length,
                payload,
                buffer,
                when,
            } => {
                let Some(reply) = self.replies[server] else {
                    return "no reply handle".into();
                };
                let handle = self.mailboxes[server][mailbox];
                let payload = self.payload(server, payload, length);
                let buffer = self.slice(server, buffer, RECEIVE_AT, false);
                let blocking = self.blocking(when);
                let pid = self.pids[server];
                let System { ipc, machine, .. } = &mut self.system;
                if self.fast
                    && let Some(handoff) = ipc.mailbox_reply_receive_fast(
                        pid, reply, payload, handle, buffer, blocking, machine,
                    )
                {
                    self.handoffs += 1;
                    machine.wake(handoff.to, handoff.wakeup());
                    Ok(Outcome::Blocked)
                } else {
                    ipc.mailbox_reply_receive(
                        pid,
                        reply,
                        payload,
                        &[],
                        handle,
                        buffer,
                        blocking,
                        machine,
                    )
                }
            }
            Op::Receive {
                server,
                mailbox,
                buffer,
            } => {
                let handle = self.mailboxes[server][mailbox];
                let buffer = self.slice(server, buffer, RECEIVE_AT, false);
                let pid = self.pids[server];
                let System { ipc, machine, .. } = &mut self.system;
                ipc.mailbox_receive(pid, handle, buffer, Blocking::Forever, machine)
            }
            Op::Send {
                client,
                mailbox,
                length,
            } => {
                let me = SERVERS + client;
                let handle = self.mailboxes[me][mailbox];
                let payload = self.payload(me, Buf::Good(length), length);
                let pid = self.pids[me];
                let System { ipc, machine, .. } = &mut self.system;
                return format!(
                    "{:?}",
                    ipc.mailbox_send(pid, handle, payload, &[], Blocking::NonBlocking, machine)
                );
            }
            Op::DropReply { server } => {
                let Some(reply) = self.replies[server].take() else {
                    return "no reply handle".into();
                };
                let pid = self.pids[server];
                let System { ipc, machine, .. } = &mut self.system;
                return format!("{:?}", ipc.handle_close(pid, reply, machine));
            }
            Op::Tick(ticks) => {
                let System { ipc, machine, .. } = &mut self.system;
                machine.now += ticks;
                let now = machine.now;
                return format!("expired {}", ipc.expire(now, machine));
            }
            Op::PostWait {
                process,
                post,
                wait,
                when,
                forged,
            } => {
                let post = self.semaphores[process][post];
                let wait = if forged {
                    Handle::from_raw(0x7777)
                } else {
                    self.semaphores[process][wait]
                };
                let blocking = self.blocking(when);
                let pid = self.pids[process];
                let System { ipc, machine, .. } = &mut self.system;
                let answer = if self.fast
                    && let Some(peer) =
                        ipc.semaphore_post_wait_fast(pid, post, wait, blocking, machine)
                {
                    self.handoffs += 1;
                    machine.wake(peer, Wakeup::Completed(Completion::Acquired));
                    Ok(Outcome::Blocked)
                } else {
                    ipc.semaphore_post_wait(pid, post, wait, blocking, machine)
                };
                return format!("{answer:?}");
            }
            Op::Post { process, semaphore } => {
                let handle = self.semaphores[process][semaphore];
                let pid = self.pids[process];
                let System { ipc, machine, .. } = &mut self.system;
                return format!("{:?}", ipc.semaphore_post(pid, handle, machine));
            }
            Op::Wait {
                process,
                semaphore,
                when,
            } => {
                let handle = self.semaphores[process][semaphore];
                let blocking = self.blocking(when);
                let pid = self.pids[process];
                let System { ipc, machine, .. } = &mut self.system;
                return format!("{:?}", ipc.semaphore_wait(pid, handle, blocking, machine));
            }
            Op::Exit { process } => {
                self.exited[process] = true;
                let pid = self.pids[process];
                self.system.exit(pid);
                return "exited".into();
            }
        };
        if let Ok(Outcome::Done(received)) = &answer {
            self.learn(actor, received);
        }
        format!("{answer:?}")
    }

    /// The wake-ups of the last step, learning the handles they delivered.
    fn wakes(&mut self) -> Vec<(ProcessId, Wakeup)> {
        let wakes = self.system.machine.take_wakes();
        for (pid, wakeup) in &wakes {
            if let Wakeup::Completed(Completion::Received(received)) = wakeup
                && let Some(process) = self.pids.iter().position(|p| p == pid)
            {
                self.learn(process, received);
            }
        }
        wakes
    }

    /// Everything the two systems must agree on.
    fn observe(&self) -> String {
        let ipc = &self.system.ipc;
        let mut seen = format!("{:?}\n{:?}\n", ipc.ledger(), ipc.usage());
        for (process, pid) in self.pids.iter().enumerate() {
            for handle in &self.semaphores[process] {
                seen += &format!("units {:?}\n", ipc.semaphore_count(*pid, *handle));
            }
        }
        for (process, pid) in self.pids.iter().enumerate() {
            seen += &format!("{process} waiting {}\n", ipc.is_waiting(*pid));
            for handle in &self.issued[process] {
                seen += &format!("  {handle:?} {:?}\n", ipc.handle_info(*pid, *handle));
            }
            if !self.exited[process] {
                let memory = self.system.machine.read(*pid, RECEIVE_AT, WATCHED).unwrap();
                seen += &format!("  memory {:x}\n", fnv(&memory));
            }
        }
        seen
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    })
}

fn same_behaviour(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut general = Side::new(false);
    let mut fast = Side::new(true);
    for (step, op) in ops.iter().enumerate() {
        let expected = general.run(op);
        let got = fast.run(op);
        prop_assert_eq!(&got, &expected, "step {}: {:?}", step, op);
        prop_assert_eq!(
            fast.wakes(),
            general.wakes(),
            "wake-ups, step {}: {:?}",
            step,
            op
        );
        prop_assert_eq!(
            fast.observe(),
            general.observe(),
            "state, step {}: {:?}",
            step,
            op
        );
    }
    HANDOFFS.fetch_add(fast.handoffs, Ordering::Relaxed);
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 400, ..Config::default() })]

    #[test]
    fn the_fast_path_does_exactly_what_the_general_path_does(ops in prop::collection::vec(op(), 1..80)) {
        same_behaviour(&ops)?;
    }
}

/// The property above exercises the fast path, not only its refusals.
#[test]
fn random_sequences_reach_the_fast_path() {
    let ops = [
        Op::Receive {
            server: 0,
            mailbox: 1,
            buffer: Buf::Good(100),
        },
        Op::Call {
            client: 2,
            mailbox: 1,
            length: 64,
            payload: Buf::Good(64),
            reply: Buf::Good(40),
            when: When::Within(2),
            forged: false,
        },
        Op::ReplyReceive {
            server: 0,
            mailbox: 1,
            length: 40,
            payload: Buf::Good(40),
            buffer: Buf::Good(8),
            when: When::Within(1),
        },
        Op::Tick(2),
    ];
    same_behaviour(&ops).unwrap();
    assert!(HANDOFFS.load(Ordering::Relaxed) >= 2);
}

/// A server loop: every call after the first and every reply-receive takes the fast
/// path, and the ledger counts one user-to-user copy per message, as the general path.
#[test]
fn a_round_trip_loop_takes_the_fast_path_every_time() {
    let mut fast = Side::new(true);
    let mut general = Side::new(false);
    let receive = Op::Receive {
        server: 1,
        mailbox: 0,
        buffer: Buf::Good(64),
    };
    let call = Op::Call {
        client: 0,
        mailbox: 0,
        length: 40,
        payload: Buf::Good(64),
        reply: Buf::Good(64),
        when: When::Forever,
        forged: false,
    };
    let answer = Op::ReplyReceive {
        server: 1,
        mailbox: 0,
        length: 8,
        payload: Buf::Good(8),
        buffer: Buf::Good(64),
        when: When::Forever,
    };
    for side in [&mut fast, &mut general] {
        assert_eq!(side.run(&receive), "Ok(Blocked)");
        for _ in 0..100 {
            assert_eq!(side.run(&call), "Ok(Blocked)");
            side.wakes();
            assert_eq!(side.run(&answer), "Ok(Blocked)");
            side.wakes();
        }
    }
    assert_eq!(
        fast.handoffs, 200,
        "every call but none of the set-up on the fast path"
    );
    assert_eq!(general.handoffs, 0);
    assert_eq!(fast.observe(), general.observe());
    let copies = fast
        .system
        .ipc
        .ledger()
        .global()
        .copies(Mechanism::Mailbox, Direction::UserToUser);
    assert_eq!((copies.operations, copies.bytes), (200, 100 * 48));
}

/// A shared-memory ping-pong: every turn after the first takes the semaphore fast
/// path, and both systems end the same.
#[test]
fn a_semaphore_ping_pong_takes_the_fast_path_every_turn() {
    let mut fast = Side::new(true);
    let mut general = Side::new(false);
    let first = Op::Wait {
        process: 3,
        semaphore: 0,
        when: When::Forever,
    };
    let turn = |process: usize, post: usize| Op::PostWait {
        process,
        post,
        wait: 1 - post,
        when: When::Forever,
        forged: false,
    };
    for side in [&mut fast, &mut general] {
        assert_eq!(side.run(&first), "Ok(Blocked)");
        for _ in 0..50 {
            assert_eq!(side.run(&turn(2, 0)), "Ok(Blocked)");
            side.wakes();
            assert_eq!(side.run(&turn(3, 1)), "Ok(Blocked)");
            side.wakes();
        }
    }
    assert_eq!(fast.handoffs, 100);
    assert_eq!(fast.observe(), general.observe());
}
