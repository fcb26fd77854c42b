//! Property tests against reference models: pipe vs a byte deque, message queue vs a
//! priority-ordered model, handle table vs a map, and "accounted bytes == bytes moved".

mod sim;

use std::collections::{BTreeMap, VecDeque};

use kipc::*;
use proptest::prelude::*;
use sim::{PRIVATE_BASE, System};

/// Small pipes wrap often.
/// No quotas: the models know only the tables.
type SmallIpc = Ipc<4, 16, 4, 64, 64, 8, 16, 64, 64, kipc::Unlimited>;

#[derive(Debug, Clone)]
enum PipeOp {
    Write(Vec<u8>),
    Read(usize),
}

fn pipe_op() -> impl Strategy<Value = PipeOp> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..100).prop_map(PipeOp::Write),
        (0usize..100).prop_map(PipeOp::Read),
    ]
}

proptest! {
    #[test]
    fn pipe_behaves_like_a_byte_deque(ops in prop::collection::vec(pipe_op(), 1..60)) {
        let mut ipc = Box::new(SmallIpc::new());
        let mut system = System::new();
        let pid = ipc.process_create().unwrap();
        system.machine.give_private_memory(pid);
        let (read, write) = ipc.pipe_create(pid).unwrap();
        let mut model: VecDeque<u8> = VecDeque::new();
        let mut moved = 0u64;
        let machine = &mut system.machine;
        for op in ops {
            match op {
                PipeOp::Write(bytes) => {
                    machine.write(pid, PRIVATE_BASE, &bytes).unwrap();
                    let slice = machine.slice(PRIVATE_BASE, bytes.len());
                    let free = 64 - model.len();
                    match ipc.pipe_write(pid, write, slice, Blocking::NonBlocking, machine) {
                        Ok(Outcome::Done(n)) => {
                            // Writes up to the atomic limit (here the capacity) are all or
                            // nothing; larger ones take what fits.
                            prop_assert_eq!(n, bytes.len().min(free));
                            model.extend(&bytes[..n]);
                            moved += n as u64;
                        }
                        Err(Error::WouldBlock) => prop_assert!(
                            (bytes.len() <= 64 && bytes.len() > free) || (bytes.len() > 64 && free == 0)
                        ),
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
                PipeOp::Read(length) => {
                    let slice = machine.slice(PRIVATE_BASE + 0x1000, length);
                    match ipc.pipe_read(pid, read, slice, Blocking::NonBlocking, machine) {
                        Ok(Outcome::Done(n)) => {
                            prop_assert_eq!(n, length.min(model.len()));
                            let expected: Vec<u8> = model.drain(..n).collect();
                            prop_assert_eq!(machine.read(pid, PRIVATE_BASE + 0x1000, n).unwrap(), expected);
                            moved += n as u64;
                        }
                        Err(Error::WouldBlock) => prop_assert!(model.is_empty() && length > 0),
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
            }
            prop_assert_eq!(ipc.pipe_buffered(pid, read).unwrap(), model.len());
        }
        // The ledger counts exactly the bytes that moved, through the pipe only.
        let global = *ipc.ledger().global();
        prop_assert_eq!(global.total_bytes(), moved);
        prop_assert_eq!(global.bytes_by(Mechanism::Pipe), moved);
    }
}

#[derive(Debug, Clone)]
enum QueueOp {
    Send(u8, Vec<u8>),
    Receive,
}

fn queue_op() -> impl Strategy<Value = QueueOp> {
    prop_oneof![
        (
            0u8..PRIORITY_LEVELS,
            prop::collection::vec(any::<u8>(), 0..=16)
        )
            .prop_map(|(p, d)| QueueOp::Send(p, d)),
        Just(QueueOp::Receive),
    ]
}

proptest! {
    #[test]
    fn message_queue_matches_a_priority_model(ops in prop::collection::vec(queue_op(), 1..80)) {
        let mut ipc = Box::new(SmallIpc::new());
        let mut system = System::new();
        let pid = ipc.process_create().unwrap();
        system.machine.give_private_memory(pid);
        let machine = &mut system.machine;
        let queue = ipc.mqueue_create(pid, b"model", 6, 16).unwrap();
        // Model: (priority, sequence, data); receive takes max priority, then min sequence.
        let mut model: Vec<(u8, u64, Vec<u8>)> = Vec::new();
        let mut sequence = 0;
        let mut moved = 0u64;
        for op in ops {
            match op {
                QueueOp::Send(priority, data) => {
                    machine.write(pid, PRIVATE_BASE, &data).unwrap();
                    let result = ipc.mqueue_send(pid, queue, machine.slice(PRIVATE_BASE, data.len()), priority, Blocking::NonBlocking, machine);
                    if model.len() == 6 {
                        prop_assert_eq!(result, Err(Error::WouldBlock));
                    } else {
                        prop_assert_eq!(result, Ok(Outcome::Done(())));
                        moved += data.len() as u64;
                        model.push((priority, sequence, data));
                        sequence += 1;
                    }
                }
                QueueOp::Receive => {
                    let result = ipc.mqueue_receive(pid, queue, machine.slice(PRIVATE_BASE + 0x100, 16), Blocking::NonBlocking, machine);
                    let best = model
                        .iter()
                        .enumerate()
                        .max_by_key(|(_, (p, s, _))| (*p, std::cmp::Reverse(*s)))
                        .map(|(i, _)| i);
                    match best {
                        None => prop_assert_eq!(result, Err(Error::WouldBlock)),
                        Some(index) => {
                            let (priority, _, data) = model.remove(index);
                            let got = result.unwrap().done().unwrap();
                            prop_assert_eq!(got, QueuedMessage { length: data.len(), priority });
                            prop_assert_eq!(machine.read(pid, PRIVATE_BASE + 0x100, data.len()).unwrap(), data.clone());
                            moved += data.len() as u64;
                        }
                    }
                }
            }
        }
        prop_assert_eq!(ipc.ledger().global().bytes_by(Mechanism::MessageQueue), moved);
        prop_assert_eq!(ipc.ledger().global().total_bytes(), moved);
    }
}

#[derive(Debug, Clone)]
enum TableOp {
    Insert(u32),
    Remove(usize),
    Get(usize),
    Forge(u32),
}

fn table_op() -> impl Strategy<Value = TableOp> {
    prop_oneof![
        any::<u32>().prop_map(TableOp::Insert),
        any::<usize>().prop_map(TableOp::Remove),
        any::<usize>().prop_map(TableOp::Get),
        any::<u32>().prop_map(TableOp::Forge),
    ]
}

proptest! {
    #[test]
    fn handle_table_matches_a_map(ops in prop::collection::vec(table_op(), 1..200)) {
        let mut table: HandleTable<u32, 8> = HandleTable::new();
        let mut live: BTreeMap<Handle, u32> = BTreeMap::new();
        let mut retired: Vec<Handle> = Vec::new();
        let mut issued: Vec<Handle> = Vec::new();
        for op in ops {
            match op {
                TableOp::Insert(value) => match table.insert(value) {
                    Ok(handle) => {
                        prop_assert!(!live.contains_key(&handle), "a live handle was aliased");
                        prop_assert!(!retired.contains(&handle), "a closed handle came back");
                        live.insert(handle, value);
                        issued.push(handle);
                    }
                    Err(error) => {
                        prop_assert_eq!(error, Error::OutOfHandles);
                        prop_assert_eq!(live.len(), 8);
                    }
                },
                TableOp::Remove(i) | TableOp::Get(i) if issued.is_empty() => { let _ = i; }
                TableOp::Remove(i) => {
                    let handle = issued[i % issued.len()];
                    match live.remove(&handle) {
                        Some(value) => {
                            prop_assert_eq!(table.remove(handle), Ok(value));
                            retired.push(handle);
                        }
                        None => prop_assert_eq!(table.remove(handle), Err(Error::StaleHandle)),
                    }
                }
                TableOp::Get(i) => {
                    let handle = issued[i % issued.len()];
                    match live.get(&handle) {
                        Some(value) => prop_assert_eq!(table.get(handle), Ok(value)),
                        None => prop_assert_eq!(table.get(handle), Err(Error::StaleHandle)),
                    }
                }
                TableOp::Forge(raw) => {
                    let handle = Handle::from_raw(raw);
                    match live.get(&handle) {
                        Some(value) => prop_assert_eq!(table.get(handle), Ok(value)),
                        None => prop_assert!(table.get(handle).is_err()),
                    }
                }
            }
            prop_assert_eq!(table.len(), live.len());
        }
    }
}

proptest! {
    /// Mailbox traffic, mixing direct hand-offs and buffered messages: the ledger must count
    /// every payload byte exactly as many times as it was copied.
    #[test]
    fn ledger_counts_exactly_the_bytes_moved(plan in prop::collection::vec((0usize..=256, any::<bool>(), any::<bool>()), 1..40)) {
        let mut system = System::new();
        let sender = system.spawn();
        let receiver = system.spawn();
        let mailbox = system.ipc.mailbox_create(receiver).unwrap();
        let send = system.ipc.handle_grant(receiver, mailbox, sender, Rights::WRITE).unwrap();
        let mut expected = 0u64;
        let mut direct_bytes = 0u64;
        let mut buffered_bytes = 0u64;
        for (length, receiver_waits, receive_after) in plan {
            let buffer = system.machine.slice(PRIVATE_BASE, 256);
            if receiver_waits && system.ipc.usage().queued_messages == 0 {
                let outcome = system.ipc.mailbox_receive(receiver, mailbox, buffer, Blocking::Forever, &mut system.machine).unwrap();
                prop_assert!(outcome.is_blocked());
            }
            let waiting = system.ipc.is_waiting(receiver);
            let payload = system.machine.slice(PRIVATE_BASE + 0x1000, length);
            match system.ipc.mailbox_send(sender, send, payload, &[], Blocking::NonBlocking, &mut system.machine) {
                Ok(Outcome::Done(())) if waiting => { expected += length as u64; direct_bytes += length as u64; }
                Ok(Outcome::Done(())) => { expected += length as u64; buffered_bytes += length as u64; }
                Err(Error::WouldBlock) => prop_assert!(!waiting),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
            system.machine.take_wakes();
            if receive_after
                && !system.ipc.is_waiting(receiver)
                && let Ok(Outcome::Done(message)) = system.ipc.mailbox_receive(
                    receiver, mailbox, buffer, Blocking::NonBlocking, &mut system.machine,
                )
            {
                expected += message.length as u64;
            }
        }
        let global = *system.ipc.ledger().global();
        prop_assert_eq!(global.total_bytes(), expected);
        prop_assert_eq!(global.copies(Mechanism::Mailbox, Direction::UserToUser).bytes, direct_bytes);
        prop_assert_eq!(global.copies(Mechanism::Mailbox, Direction::UserToKernel).bytes, buffered_bytes);
        let per_process = system.ipc.ledger().process(sender).unwrap().total_bytes()
            + system.ipc.ledger().process(receiver).unwrap().total_bytes();
        prop_assert_eq!(per_process, expected, "per-process ledgers add up to the global one");
    }
}
