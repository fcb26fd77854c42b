//! The lab kit: the labs, their checks, starter trees made from the
//! reference, and the grader (`cargo run -- lab ...`, `cargo run -- grade`).
//!
//! **Regions.** The reference code marks what each lab asks students to
//! write:
//!
//! ```text
//! // LAB pipe: begin
//! ...the reference code...
//! // LAB pipe: stub
//! // ...what the starter has instead, commented out here...
//! // LAB pipe: end
//! ```
//!
//! (`#` instead of `//` in files that use it.) [`starter_text`] turns a file
//! of the reference into the student's: the lab's regions become their stubs
//! (uncommented) between the begin and end lines, which then point at the
//! handout; every other lab's markers and stubs are dropped and its
//! reference code kept. The starter is never stored: `lab start` makes it
//! from the reference, and `tests/labs.rs` checks that every starter builds,
//! fails exactly the checks its lab asks for, and contains none of the
//! reference code it replaced.
//!
//! **Checks.** Each lab has weighted checks: a host test of the kipc crate
//! (run as `cargo test -p kipc ... -- --exact NAME`), a boot scenario under
//! QEMU with the lines its log must hold, the tree building, or answers
//! checked against what the student's own kernel measures. Every QEMU run and
//! every test run has a timeout: a hang or a panic is a failed check.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Artifacts, BuildOutput, Profile, RunOptions};

/// One lab.
#[derive(Debug)]
pub struct Lab {
    /// Its name (`labs/NAME/README.md`, `LAB NAME:` markers).
    pub name: &'static str,
    /// One line saying what it is about.
    pub title: &'static str,
    /// Estimated hours for a student who has read the prerequisites.
    pub hours: u32,
    /// What the grader checks.
    pub checks: &'static [Check],
}

/// One graded check.
#[derive(Debug)]
pub struct Check {
    /// What it checks, as the grader prints it.
    pub name: &'static str,
    /// Points it is worth.
    pub points: u32,
    /// How it is checked.
    pub kind: Kind,
    /// Whether it exercises the code the lab asks for (and so fails in the
    /// starter tree); the others guard what must keep working.
    pub own: bool,
}

/// How a check is made.
#[derive(Debug)]
pub enum Kind {
    /// The workspace, the kernel and the user programs build.
    Build,
    /// One test of the kipc crate passes: `test` in the unit tests (`None`)
    /// or in `tests/FILE.rs`.
    Host {
        /// The integration test file, or `None` for the unit tests.
        file: Option<&'static str>,
        /// The test's full name.
        test: &'static str,
    },
    /// A boot passes and its serial log holds every line.
    Boot {
        /// The scenario.
        scenario: &'static str,
        /// More kernel command-line words.
        append: &'static [&'static str],
        /// Lines the log must hold.
        lines: &'static [&'static str],
    },
    /// The answers in `file` match what the experiment measures on this
    /// tree's kernel: each `MECHANISM.copies` exactly, each
    /// `MECHANISM.instructions_per_kib` within `tolerance_percent`.
    Answers {
        /// The answers file, from the repository root.
        file: &'static str,
        /// Which keys this check covers.
        keys: &'static [&'static str],
        /// Allowed distance for instruction counts, in percent.
        tolerance_percent: u32,
    },
}

const BUILD: Check = Check {
    name: "the tree builds (kipc, the kernel, the user programs)",
    points: 5,
    kind: Kind::Build,
    own: false,
};

/// Every lab, easiest first.
pub const LABS: &[Lab] = &[
    Lab {
        name: "pipe",
        title: "Pipes: the ring buffer, blocking, end of file and broken pipes",
        hours: 2,
        checks: &[
            BUILD,
            Check {
                name: "bytes flow through the ring and wrap around",
                points: 10,
                kind: Kind::Host {
                    file: None,
                    test: "pipe::tests::bytes_flow_and_wrap_in_two_runs",
                },
                own: true,
            },
            Check {
                name: "an empty pipe blocks; end of file after the last writer closes",
                points: 10,
                kind: Kind::Host {
                    file: None,
                    test: "pipe::tests::empty_blocks_then_eof_when_writers_gone",
                },
                own: true,
            },
            Check {
                name: "no reader left: BrokenPipe, and the parked writer woken",
                points: 10,
                kind: Kind::Host {
                    file: None,
                    test: "pipe::tests::broken_pipe_and_writer_woken",
                },
                own: true,
            },
            Check {
                name: "no reader left: SIGPIPE unless ignored",
                points: 5,
                kind: Kind::Host {
                    file: Some("core_signals"),
                    test: "a_write_without_reader_raises_sigpipe_unless_ignored",
                },
                own: true,
            },
            Check {
                name: "a multi-page stream between two processes under QEMU",
                points: 10,
                kind: Kind::Boot {
                    scenario: "pipe",
                    append: &[],
                    lines: &["init: pipe:"],
                },
                own: true,
            },
            Check {
                name: "message queues still work (they share no code with pipes)",
                points: 5,
                kind: Kind::Host {
                    file: Some("core_sim"),
                    test: "file_transfer_through_a_message_queue_costs_four_copies_per_byte",
                },
                own: false,
            },
        ],
    },
    Lab {
        name: "mailbox",
        title: "Mailboxes: hand a message straight to a waiting receiver (one copy instead of two)",
        hours: 3,
        checks: &[
            BUILD,
            Check {
                name: "a send to a waiting receiver is one user-to-user copy",
                points: 15,
                kind: Kind::Host {
                    file: None,
                    test: "mailbox::tests::waiting_receiver_gets_a_direct_copy",
                },
                own: true,
            },
            Check {
                name: "a server waiting in reply-receive gets the next call handed over",
                points: 10,
                kind: Kind::Host {
                    file: None,
                    test: "mailbox::tests::reply_receive_blocks_and_a_later_call_hands_over_directly",
                },
                own: true,
            },
            Check {
                name: "a receiver with a bad buffer does not jam the mailbox",
                points: 5,
                kind: Kind::Host {
                    file: None,
                    test: "mailbox::tests::a_receiver_with_a_bad_buffer_does_not_jam_the_mailbox",
                },
                own: false,
            },
            Check {
                name: "buffered messages still cost two copies",
                points: 5,
                kind: Kind::Host {
                    file: None,
                    test: "mailbox::tests::buffered_message_costs_two_copies",
                },
                own: false,
            },
            Check {
                name: "call/reply between real processes under QEMU",
                points: 10,
                kind: Kind::Boot {
                    scenario: "mailbox",
                    append: &[],
                    lines: &["init: mailbox:"],
                },
                own: false,
            },
        ],
    },
    Lab {
        name: "shm",
        title: "Shared regions: map with per-mapping rights, unmap, clean up at exit",
        hours: 3,
        checks: &[
            BUILD,
            Check {
                name: "mapping needs MAP, and WRITE to map read-write",
                points: 10,
                kind: Kind::Host {
                    file: Some("core_rights"),
                    test: "read_only_mapping_cannot_be_written",
                },
                own: true,
            },
            Check {
                name: "every mapping shows the same frames, freed after the last unmap",
                points: 10,
                kind: Kind::Host {
                    file: None,
                    test: "shm::tests::same_frames_in_every_mapping_and_freed_at_the_end",
                },
                own: true,
            },
            Check {
                name: "an exiting process gives back every mapping and frame",
                points: 10,
                kind: Kind::Host {
                    file: Some("core_exhaustion"),
                    test: "exiting_processes_return_every_resource",
                },
                own: true,
            },
            Check {
                name: "two processes share a region under QEMU, nothing leaks",
                points: 10,
                kind: Kind::Boot {
                    scenario: "shm",
                    append: &[],
                    lines: &["init: shm:"],
                },
                own: true,
            },
            Check {
                name: "message queues still work (they share no code with regions)",
                points: 5,
                kind: Kind::Host {
                    file: Some("core_sim"),
                    test: "file_transfer_through_a_message_queue_costs_four_copies_per_byte",
                },
                own: false,
            },
        ],
    },
    Lab {
        name: "loan",
        title: "Page loans: move pages between address spaces with zero copies",
        hours: 4,
        checks: &[
            BUILD,
            Check {
                name: "a loan moves the lender's frames into a region",
                points: 15,
                kind: Kind::Host {
                    file: None,
                    test: "shm::tests::page_loan_moves_frames",
                },
                own: true,
            },
            Check {
                name: "a loan of read-only pages cannot be mapped writable",
                points: 10,
                kind: Kind::Host {
                    file: None,
                    test: "shm::tests::a_loan_of_read_only_pages_cannot_be_mapped_writable",
                },
                own: true,
            },
            Check {
                name: "a file moved by page loan: 0 copies",
                points: 10,
                kind: Kind::Host {
                    file: Some("core_sim"),
                    test: "file_transfer_by_page_loan_copies_nothing",
                },
                own: true,
            },
            Check {
                name: "a refused loan unmaps nothing",
                points: 5,
                kind: Kind::Host {
                    file: None,
                    test: "shm::tests::a_loan_with_no_region_left_reports_missing_pages_first_and_moves_nothing",
                },
                own: false,
            },
            Check {
                name: "shared regions still work (they share the table)",
                points: 5,
                kind: Kind::Host {
                    file: None,
                    test: "shm::tests::same_frames_in_every_mapping_and_freed_at_the_end",
                },
                own: false,
            },
        ],
    },
    Lab {
        name: "accounting",
        title: "The copy ledger: count every copy, then predict and measure what each mechanism costs",
        hours: 3,
        checks: &[
            BUILD,
            Check {
                name: "copies are counted globally and per process",
                points: 10,
                kind: Kind::Host {
                    file: None,
                    test: "accounting::tests::record_global_and_per_process",
                },
                own: true,
            },
            Check {
                name: "the ledger counts exactly the bytes that moved (property test)",
                points: 10,
                kind: Kind::Host {
                    file: Some("core_props"),
                    test: "ledger_counts_exactly_the_bytes_moved",
                },
                own: true,
            },
            Check {
                name: "predicted copies per byte match the ledger",
                points: 10,
                kind: Kind::Answers {
                    file: "labs/accounting/answers.txt",
                    keys: &[
                        "pipe.copies",
                        "mqueue.copies",
                        "mailbox.copies",
                        "mailbox-direct.copies",
                        "shm.copies",
                        "loan.copies",
                    ],
                    tolerance_percent: 0,
                },
                own: true,
            },
            Check {
                name: "measured instructions per KiB (within 10%)",
                points: 10,
                kind: Kind::Answers {
                    file: "labs/accounting/answers.txt",
                    keys: &["pipe.instructions_per_kib", "shm.instructions_per_kib"],
                    tolerance_percent: 10,
                },
                own: true,
            },
        ],
    },
    Lab {
        name: "signals",
        title: "Signals: interrupt blocked calls without losing data, deliver to handlers",
        hours: 5,
        checks: &[
            BUILD,
            Check {
                name: "every blocking call is interrupted before progress",
                points: 10,
                kind: Kind::Host {
                    file: Some("core_signals"),
                    test: "every_blocking_call_before_progress_is_interrupted",
                },
                own: true,
            },
            Check {
                name: "... and restarted under RESTART",
                points: 5,
                kind: Kind::Host {
                    file: Some("core_signals"),
                    test: "every_blocking_call_before_progress_restarts_under_sa_restart",
                },
                own: true,
            },
            Check {
                name: "a pipe write interrupted after progress returns its count",
                points: 5,
                kind: Kind::Host {
                    file: Some("core_signals"),
                    test: "a_pipe_write_interrupted_after_progress_returns_its_count",
                },
                own: true,
            },
            Check {
                name: "a call the server took is never restarted",
                points: 5,
                kind: Kind::Host {
                    file: Some("core_signals"),
                    test: "a_call_interrupted_after_the_server_took_it_is_never_restarted_and_the_reply_fails",
                },
                own: true,
            },
            Check {
                name: "handler masks, NODEFER and RESETHAND",
                points: 10,
                kind: Kind::Host {
                    file: Some("core_signals"),
                    test: "delivery_order_handler_masks_nodefer_and_resethand",
                },
                own: true,
            },
            Check {
                name: "the signals scenario under QEMU",
                points: 10,
                kind: Kind::Boot {
                    scenario: "signals",
                    append: &[],
                    lines: &["signals: every check held"],
                },
                own: true,
            },
            Check {
                name: "masks and pending sets (already given)",
                points: 5,
                kind: Kind::Host {
                    file: Some("core_signals"),
                    test: "a_blocked_signal_stays_pending_until_unblocked",
                },
                own: false,
            },
        ],
    },
];

/// The lab named `name`.
pub fn find(name: &str) -> Option<&'static Lab> {
    LABS.iter().find(|lab| lab.name == name)
}

impl Lab {
    /// Full marks.
    pub fn total(&self) -> u32 {
        self.checks.iter().map(|check| check.points).sum()
    }
}

// ---------------------------------------------------------------------- regions

/// A marker line: `// LAB NAME: begin|stub|end` (or with `#`).
fn marker(line: &str) -> Option<(&str, &str, &str)> {
    let trimmed = line.trim_start();
    let (prefix, rest) = if let Some(rest) = trimmed.strip_prefix("// LAB ") {
        ("//", rest)
    } else if let Some(rest) = trimmed.strip_prefix("# LAB ") {
        ("#", rest)
    } else {
        return None;
    };
    let (name, what) = rest.split_once(": ")?;
    let what = what.split_whitespace().next()?;
    matches!(what, "begin" | "stub" | "end").then_some((name, what, prefix))
}

/// A starter file, and how many regions of its lab it replaced.
#[derive(Debug, PartialEq, Eq)]
pub struct Starter {
    /// The file's text in the starter tree.
    pub text: String,
    /// Regions of the lab replaced by their stubs.
    pub regions: usize,
    /// The reference lines those regions held (to check none leaks).
    pub removed: Vec<String>,
}

/// The student's version of a reference file for lab `lab` (see the module
/// documentation; `None` turns every lab's regions into stubs). Fails on
/// unbalanced markers, naming the line.
pub fn starter_text(text: &str, lab: Option<&str>) -> Result<Starter, String> {
    let ours = |name: &str| lab.is_none_or(|lab| lab == name);
    #[derive(PartialEq)]
    enum State {
        Outside,
        Reference,
        Stub,
    }
    let mut state = State::Outside;
    let mut current = "";
    let mut out = String::with_capacity(text.len());
    let mut regions = 0;
    let mut removed = Vec::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        match marker(line) {
            Some((name, "begin", _)) => {
                if state != State::Outside {
                    return Err(format!(
                        "line {number}: LAB {name}: begin inside LAB {current}"
                    ));
                }
                state = State::Reference;
                current = name;
                if ours(name) {
                    regions += 1;
                    let indent = &line[..line.len() - line.trim_start().len()];
                    let (_, _, prefix) = marker(line).expect("a marker");
                    let _ = writeln!(
                        out,
                        "{indent}{prefix} LAB {name}: begin -- your code replaces the stub below (labs/{name}/README.md)"
                    );
                }
            }
            Some((name, "stub", _)) => {
                if state != State::Reference || name != current {
                    return Err(format!(
                        "line {number}: LAB {name}: stub outside its region"
                    ));
                }
                state = State::Stub;
            }
            Some((name, _, _)) => {
                if state == State::Outside || name != current {
                    return Err(format!("line {number}: LAB {name}: end without begin"));
                }
                if ours(name) {
                    out.push_str(line);
                }
                state = State::Outside;
            }
            None => match state {
                State::Outside => out.push_str(line),
                State::Reference => {
                    if ours(current) {
                        if !line.trim().is_empty() {
                            removed.push(line.trim().to_string());
                        }
                    } else {
                        out.push_str(line);
                    }
                }
                State::Stub => {
                    if ours(current) {
                        out.push_str(&uncomment(line));
                    }
                }
            },
        }
    }
    if state != State::Outside {
        return Err(format!("LAB {current}: begin without end"));
    }
    Ok(Starter {
        text: out,
        regions,
        removed,
    })
}

/// A stub line as the starter has it: the first `// ` or `# ` after the
/// indentation removed.
fn uncomment(line: &str) -> String {
    let indent = line.len() - line.trim_start().len();
    let (head, rest) = line.split_at(indent);
    for prefix in ["// ", "# ", "//", "#"] {
        if let Some(code) = rest.strip_prefix(prefix) {
            return format!("{head}{code}");
        }
    }
    line.to_string()
}

/// The repository's files, as git knows them (or, without git, every file
/// outside `target/` and `.git/`).
pub fn tracked_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    let listed = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "-z"])
        .output();
    if let Ok(output) = listed
        && output.status.success()
    {
        return Ok(output
            .stdout
            .split(|byte| *byte == 0)
            .filter(|name| !name.is_empty())
            .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
            .filter(|name| root.join(name).is_file())
            .collect());
    }
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(directory) = pending.pop() {
        let entries = std::fs::read_dir(root.join(&directory))
            .map_err(|error| format!("listing {}: {error}", directory.display()))?;
        for entry in entries.flatten() {
            let name = directory.join(entry.file_name());
            if name == Path::new("target") || name == Path::new(".git") {
                continue;
            }
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(name),
                Ok(kind) if kind.is_file() => files.push(name),
                _ => {}
            }
        }
    }
    files.sort();
    Ok(files)
}

/// What [`write_starter`] did.
#[derive(Debug)]
pub struct StarterTree {
    /// Files written.
    pub files: usize,
    /// Regions replaced by stubs, over all files.
    pub regions: usize,
    /// Every reference line the regions held.
    pub removed: Vec<String>,
}

/// Writes the starter tree of `lab` from the reference at `root` into
/// `destination` (which may hold an earlier starter: its files are
/// overwritten, `target/` is left alone).
pub fn write_starter(lab: &Lab, root: &Path, destination: &Path) -> Result<StarterTree, String> {
    let mut tree = StarterTree {
        files: 0,
        regions: 0,
        removed: Vec::new(),
    };
    for file in tracked_files(root)? {
        let source = root.join(&file);
        let target = destination.join(&file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| format!("creating {}: {error}", parent.display()))?;
        }
        let bytes = std::fs::read(&source)
            .map_err(|error| format!("reading {}: {error}", file.display()))?;
        let written = match String::from_utf8(bytes) {
            Ok(text) if text.contains("LAB ") => {
                // Under labs/ (answers files) every lab's regions become stubs: no
                // starter hands out another lab's answers. In the code, other
                // labs' regions keep their reference code: the kernel needs it.
                let only = if file.starts_with("labs") {
                    None
                } else {
                    Some(lab.name)
                };
                let starter = starter_text(&text, only)
                    .map_err(|error| format!("{}: {error}", file.display()))?;
                tree.regions += text.matches(&format!("LAB {}: begin", lab.name)).count();
                tree.removed.extend(starter.removed);
                std::fs::write(&target, starter.text)
            }
            Ok(text) => std::fs::write(&target, text),
            Err(error) => std::fs::write(&target, error.into_bytes()),
        };
        written.map_err(|error| format!("writing {}: {error}", target.display()))?;
        if let Ok(metadata) = std::fs::metadata(&source) {
            let _ = std::fs::set_permissions(&target, metadata.permissions());
        }
        tree.files += 1;
    }
    if tree.regions == 0 {
        return Err(format!("no LAB {} regions in the reference", lab.name));
    }
    Ok(tree)
}

/// `cargo run -- lab start NAME [DIR]`: writes the starter tree into `DIR`
/// (default `../kipc-lab-NAME`) and makes it a git repository with one
/// commit, so the student's changes are one `git diff` away.
pub fn start(lab: &Lab, root: &Path, destination: Option<PathBuf>) -> Result<PathBuf, String> {
    let destination = destination.unwrap_or_else(|| {
        root.parent()
            .unwrap_or(root)
            .join(format!("kipc-lab-{}", lab.name))
    });
    if destination.exists()
        && std::fs::read_dir(&destination)
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(true)
    {
        return Err(format!(
            "{} exists and is not empty: choose another directory",
            destination.display()
        ));
    }
    let tree = write_starter(lab, root, &destination)?;
    let git = |arguments: &[&str]| {
        Command::new("git")
            .current_dir(&destination)
            .args(arguments)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|status| status.success())
            .unwrap_or(false)
    };
    let message = format!("kipc lab {}: starter", lab.name);
    let committed = git(&["init", "-q"])
        && git(&["add", "-A"])
        && git(&[
            "-c",
            "user.name=kipc lab",
            "-c",
            "user.email=lab@kipc.invalid",
            "commit",
            "-q",
            "-m",
            &message,
        ]);
    println!(
        "kipc-qemu: lab {} ({} h): {}\n  wrote {} files to {} ({} regions to fill in){}",
        lab.name,
        lab.hours,
        lab.title,
        tree.files,
        destination.display(),
        tree.regions,
        if committed {
            ", as a git repository with one commit"
        } else {
            " (git not available: no repository made)"
        }
    );
    println!(
        "  next: cd {} && read labs/{}/README.md, then `cargo run -- grade {}`",
        destination.display(),
        lab.name,
        lab.name
    );
    Ok(destination)
}

// ---------------------------------------------------------------------- grading

/// How one check went.
#[derive(Debug)]
pub struct Outcome {
    /// The check.
    pub check: &'static Check,
    /// Whether it passed.
    pub passed: bool,
    /// Why not (first lines), or empty.
    pub reason: String,
    /// The whole output of the failing run, saved under `target/grade/`.
    pub log: String,
}

/// How long a test run (build included) may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(900);
/// How long one boot may take.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Grades `lab` in the tree at `root`, printing one line per check.
pub fn grade(lab: &'static Lab, root: &Path) -> Vec<Outcome> {
    let mut artifacts: Option<Result<Artifacts, String>> = None;
    let mut experiment: Option<Result<String, String>> = None;
    let mut outcomes = Vec::new();
    for check in lab.checks {
        let (passed, reason, log) = match &check.kind {
            Kind::Build => match built(&mut artifacts, root) {
                Ok(_) => (true, String::new(), String::new()),
                Err(error) => (false, first_lines(&error, 6), error),
            },
            Kind::Host { file, test } => host_test(root, *file, test),
            Kind::Boot {
                scenario,
                append,
                lines,
            } => match built(&mut artifacts, root) {
                Ok(artifacts) => boot(&artifacts, scenario, append, lines),
                Err(error) => (false, "the tree does not build".into(), error),
            },
            Kind::Answers {
                file,
                keys,
                tolerance_percent,
            } => {
                if experiment.is_none() {
                    experiment = Some(match built(&mut artifacts, root) {
                        Ok(artifacts) => measure(&artifacts),
                        Err(error) => Err(format!("the tree does not build: {error}")),
                    });
                }
                match experiment.as_ref().expect("just measured") {
                    Ok(serial) => answers(root, file, keys, *tolerance_percent, serial),
                    Err(error) => (false, first_lines(error, 6), error.clone()),
                }
            }
        };
        let outcome = Outcome {
            check,
            passed,
            reason,
            log,
        };
        print_outcome(lab, &outcome);
        if !outcome.passed {
            save_log(root, lab, &outcome);
        }
        outcomes.push(outcome);
    }
    outcomes
}

fn built(cache: &mut Option<Result<Artifacts, String>>, root: &Path) -> Result<Artifacts, String> {
    if cache.is_none() {
        let host = cargo(root)
            .args(["build", "--workspace", "--quiet"])
            .output()
            .map_err(|error| format!("starting cargo: {error}"))
            .and_then(|output| {
                if output.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&output.stderr).into_owned())
                }
            });
        *cache = Some(host.and_then(|()| {
            crate::build(Profile::Debug, BuildOutput::Capture).map_err(|error| error.to_string())
        }));
    }
    cache.clone().expect("just built")
}

/// Cargo for the tree at `root`, without the outer cargo's environment.
fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root);
    for variable in crate::SCRUBBED_ENVIRONMENT {
        command.env_remove(variable);
    }
    command.env("CARGO_TERM_COLOR", "never");
    command
}

fn host_test(root: &Path, file: Option<&str>, test: &str) -> (bool, String, String) {
    let mut command = cargo(root);
    command.args(["test", "-p", "kipc"]);
    match file {
        Some(file) => command.args(["--test", file]),
        None => command.arg("--lib"),
    };
    command.args(["--", "--exact", test]);
    let output = match run_with_timeout(command, TEST_TIMEOUT) {
        Ok(output) => output,
        Err(error) => return (false, error.clone(), error),
    };
    let passed = output.success && output.text.contains("test result: ok. 1 passed");
    if passed {
        return (true, String::new(), String::new());
    }
    let reason = if output.timed_out {
        format!("timed out after {} s", TEST_TIMEOUT.as_secs())
    } else if output.text.contains("error[") || output.text.contains("error: could not compile") {
        let first = output
            .text
            .lines()
            .skip_while(|line| !line.starts_with("error"))
            .take(6)
            .collect::<Vec<_>>()
            .join("\n");
        format!("does not compile:\n{first}")
    } else if output.text.contains("running 0 tests") && !output.text.contains("1 passed") {
        format!("no test named {test}")
    } else {
        panic_message(&output.text)
    };
    (false, reason, output.text)
}

/// The interesting part of a failed test's output: its panic message.
fn panic_message(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if let Some(start) = lines.iter().position(|line| line.contains("panicked at")) {
        let message: Vec<&str> = lines[start..]
            .iter()
            .take_while(|line| !line.starts_with("note:") && !line.starts_with("stack backtrace"))
            .take(6)
            .copied()
            .collect();
        return message.join("\n");
    }
    first_lines(text, 6)
}

fn first_lines(text: &str, count: usize) -> String {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .take(count)
        .collect::<Vec<_>>()
        .join("\n")
}

struct RunOutput {
    success: bool,
    timed_out: bool,
    text: String,
}

fn run_with_timeout(mut command: Command, timeout: Duration) -> Result<RunOutput, String> {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let directory = std::env::temp_dir();
    let stamp = format!(
        "kipc-grade-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let out_path = directory.join(format!("{stamp}.out"));
    let out = std::fs::File::create(&out_path).map_err(|error| error.to_string())?;
    let err = out.try_clone().map_err(|error| error.to_string())?;
    let mut child = command
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|error| format!("starting cargo: {error}"))?;
    let started = Instant::now();
    let (success, timed_out) = loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            break (status.success(), false);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break (false, true);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    Ok(RunOutput {
        success,
        timed_out,
        text,
    })
}

fn boot(
    artifacts: &Artifacts,
    scenario: &str,
    append: &[&str],
    lines: &[&str],
) -> (bool, String, String) {
    let mut options = RunOptions::scenario(scenario);
    options.append = append.iter().map(|word| word.to_string()).collect();
    options.timeout = Some(BOOT_TIMEOUT);
    let report = match crate::run(artifacts, &options) {
        Ok(report) => report,
        Err(error) => return (false, error.to_string(), error.to_string()),
    };
    let log = format!(
        "{}\n--- QEMU stderr ---\n{}",
        report.serial, report.qemu_stderr
    );
    if let crate::Verdict::Fail(reason) = &report.verdict {
        return (false, first_lines(reason, 4), log);
    }
    for line in lines {
        if !report.serial.contains(line) {
            return (false, format!("the log lacks {line:?}"), log);
        }
    }
    (true, String::new(), String::new())
}

/// Boots the experiment (1 MiB, debug kernel, `-icount`) and returns its log.
fn measure(artifacts: &Artifacts) -> Result<String, String> {
    let mut options = RunOptions::scenario("experiment");
    options.timeout = Some(BOOT_TIMEOUT);
    options.icount = true;
    let report = crate::run(artifacts, &options).map_err(|error| error.to_string())?;
    match &report.verdict {
        crate::Verdict::Pass => Ok(report.serial),
        crate::Verdict::Fail(reason) => Err(format!(
            "the experiment failed: {reason}\n{}",
            report.serial
        )),
    }
}

/// The experiment's table: mechanism -> (copies per byte, instructions per KiB).
pub fn experiment_table(serial: &str) -> Vec<(String, f64, f64)> {
    serial
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() != 12 || !matches!(words[11], "yes" | "NO") {
                return None;
            }
            let copies = words[6].parse().ok()?;
            let instructions = words[10].parse().ok()?;
            Some((words[0].to_string(), copies, instructions))
        })
        .collect()
}

fn answers(
    root: &Path,
    file: &str,
    keys: &[&str],
    tolerance_percent: u32,
    serial: &str,
) -> (bool, String, String) {
    let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
    let given = |key: &str| {
        text.lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .find(|(name, _)| name.trim() == key)
            .map(|(_, value)| value.trim().to_string())
    };
    let table = experiment_table(serial);
    let mut wrong = Vec::new();
    for key in keys {
        let (mechanism, what) = key.rsplit_once('.').expect("KEY is MECHANISM.WHAT");
        let Some((_, copies, instructions)) = table.iter().find(|row| row.0 == mechanism) else {
            wrong.push(format!("{key}: the experiment printed no {mechanism} row"));
            continue;
        };
        let measured = if what == "copies" {
            *copies
        } else {
            *instructions
        };
        let Some(answer) = given(key) else {
            wrong.push(format!("{key}: no answer in {file}"));
            continue;
        };
        let Ok(value) = answer.parse::<f64>() else {
            wrong.push(format!("{key} = {answer}: not a number"));
            continue;
        };
        let allowed = measured.abs() * f64::from(tolerance_percent) / 100.0;
        if (value - measured).abs() > allowed + 1e-9 {
            wrong.push(format!(
                "{key} = {answer}, but this kernel measures {measured}{}",
                if tolerance_percent > 0 {
                    format!(" (allowed: within {tolerance_percent}%)")
                } else {
                    String::new()
                }
            ));
        }
    }
    if wrong.is_empty() {
        (true, String::new(), String::new())
    } else {
        let reason = wrong.join("\n");
        (
            false,
            first_lines(&reason, 6),
            format!("{reason}\n\n{serial}"),
        )
    }
}

fn slug(text: &str) -> String {
    let mut slug: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while slug.contains("--") {
        slug = slug.replace("--", "-");
    }
    slug.trim_matches('-').chars().take(60).collect()
}

/// Where a failing check's log goes.
pub fn log_path(root: &Path, lab: &Lab, check: &Check) -> PathBuf {
    root.join("target/grade")
        .join(lab.name)
        .join(format!("{}.log", slug(check.name)))
}

fn save_log(root: &Path, lab: &Lab, outcome: &Outcome) {
    let path = log_path(root, lab, outcome.check);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(&path, &outcome.log);
}

fn print_outcome(lab: &Lab, outcome: &Outcome) {
    let points = if outcome.passed {
        outcome.check.points
    } else {
        0
    };
    println!(
        "{}: {} .. {} ({points}/{})",
        lab.name,
        outcome.check.name,
        if outcome.passed { "OK" } else { "FAIL" },
        outcome.check.points
    );
    if !outcome.passed {
        for line in outcome.reason.lines().take(6) {
            println!("    {line}");
        }
    }
}

/// The score: points earned, out of full marks.
pub fn score(outcomes: &[Outcome]) -> (u32, u32) {
    let earned = outcomes
        .iter()
        .filter(|outcome| outcome.passed)
        .map(|outcome| outcome.check.points)
        .sum();
    let total = outcomes.iter().map(|outcome| outcome.check.points).sum();
    (earned, total)
}

/// The grade as JSON, for a course's own tooling.
pub fn json(lab: &Lab, outcomes: &[Outcome]) -> String {
    let (earned, total) = score(outcomes);
    let mut out = format!(
        "{{\"lab\": \"{}\", \"score\": {earned}, \"max\": {total}, \"checks\": [",
        lab.name
    );
    for (index, outcome) in outcomes.iter().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        let _ = write!(
            out,
            "{{\"name\": \"{}\", \"points\": {}, \"max\": {}, \"passed\": {}, \"reason\": \"{}\"}}",
            escape(outcome.check.name),
            if outcome.passed {
                outcome.check.points
            } else {
                0
            },
            outcome.check.points,
            outcome.passed,
            escape(&outcome.reason)
        );
    }
    out.push_str("]}\n");
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = "\
fn a() {
    // LAB one: begin
    real_one();
    // LAB one: stub
    // todo!(\"one\")
    // LAB one: end
    // LAB two: begin
    real_two();
    // LAB two: stub
    // todo!(\"two\")
    // LAB two: end
}
";

    #[test]
    fn a_region_becomes_its_stub_and_other_labs_keep_their_code() {
        let starter = starter_text(REFERENCE, Some("one")).unwrap();
        assert_eq!(starter.regions, 1);
        assert_eq!(starter.removed, vec!["real_one();".to_string()]);
        assert!(starter.text.contains("    todo!(\"one\")\n"));
        assert!(starter.text.contains("real_two();"));
        assert!(!starter.text.contains("real_one"));
        assert!(!starter.text.contains("LAB two"));
        assert!(!starter.text.contains("todo!(\"two\")"));
        assert!(starter.text.contains("// LAB one: begin -- your code"));
        assert!(starter.text.contains("// LAB one: end"));
    }

    #[test]
    fn unbalanced_markers_are_refused() {
        assert!(starter_text("// LAB x: begin\n", Some("x")).is_err());
        assert!(starter_text("// LAB x: end\n", Some("x")).is_err());
        assert!(starter_text("// LAB x: stub\n", Some("x")).is_err());
        assert!(starter_text("// LAB x: begin\n// LAB y: begin\n", Some("x")).is_err());
        assert!(starter_text("// LAB x: begin\n// LAB y: end\n", Some("x")).is_err());
    }

    #[test]
    fn hash_comments_work_too() {
        let text = "# LAB acc: begin\npipe = 4\n# LAB acc: stub\n# pipe = ?\n# LAB acc: end\n";
        let starter = starter_text(text, Some("acc")).unwrap();
        assert!(starter.text.contains("pipe = ?\n"));
        assert!(!starter.text.contains("pipe = 4"));
    }

    #[test]
    fn the_experiment_table_is_read() {
        let serial = "  pipe              1048576   2.00   2.00   0.00   0.00    4.00      0     1163      129       2045      yes\n";
        assert_eq!(
            experiment_table(serial),
            vec![("pipe".to_string(), 4.0, 2045.0)]
        );
    }

    #[test]
    fn every_lab_has_full_marks_of_at_least_forty_and_own_checks() {
        assert!(LABS.len() >= 6);
        for lab in LABS {
            assert!(lab.total() >= 40, "{}", lab.name);
            assert!(lab.checks.iter().any(|check| check.own), "{}", lab.name);
            assert!(lab.checks.iter().any(|check| !check.own), "{}", lab.name);
        }
    }
}
