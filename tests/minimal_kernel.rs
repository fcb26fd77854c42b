//! The second kernel (`qemu/minimal-kernel`): it embeds kipc the way a hobby-OS author
//! would, through the `x86_64` adapter, and it must stay small.

use std::path::PathBuf;
use std::time::Duration;

use kipc_qemu::{BuildOutput, Kernel, Profile, RunOptions};

const GLUE_LIMIT: usize = 200;

fn minimal_kernel_source(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("qemu/minimal-kernel/src")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Lines of code: not blank, not only a comment.
fn code_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .count()
}

#[test]
fn the_kipc_glue_fits_in_200_lines_and_is_all_in_one_file() {
    let glue = minimal_kernel_source("glue.rs");
    let lines = code_lines(&glue);
    eprintln!("qemu/minimal-kernel/src/glue.rs: {lines} lines of code");
    assert!(
        lines <= GLUE_LIMIT,
        "the minimal kernel's kipc glue grew to {lines} lines of code (limit {GLUE_LIMIT})"
    );
    // The count is honest only if every host-trait impl and the dispatch live there.
    for needle in [
        "impl PageTables for Machine",
        "impl kipc::Clock for Machine",
        "impl Wake for Machine",
        "pub fn system_call(",
    ] {
        assert!(glue.contains(needle), "glue.rs lacks `{needle}`");
    }
    for file in ["main.rs", "memory.rs", "loader.rs"] {
        let text = minimal_kernel_source(file);
        for needle in [
            "impl PageTables",
            "impl kipc::",
            "impl Wake",
            "UserMemory for",
        ] {
            assert!(
                !text.contains(needle),
                "{file} implements a kipc trait (`{needle}`): glue belongs in glue.rs, where it is counted"
            );
        }
    }
}

#[test]
fn line_counting_skips_blank_lines_and_comments() {
    assert_eq!(
        code_lines("// a\n\n  /// b\nfn x() {}\n    let y = 1; // c\n"),
        2
    );
}

#[test]
fn two_processes_talk_through_a_pipe_a_mailbox_and_a_shared_region() {
    let artifacts = kipc_qemu::build_kernel(Kernel::Minimal, Profile::Debug, BuildOutput::Capture)
        .unwrap_or_else(|error| panic!("minimal kernel build failed: {error}"));
    let mut options = RunOptions::scenario("talk");
    options.timeout = Some(Duration::from_secs(60));
    let report = kipc_qemu::run(&artifacts, &options).expect("QEMU starts");
    let log = &report.serial;
    assert!(
        report.passed(),
        "the minimal kernel failed: {:?}\n--- serial log ---\n{log}",
        report.verdict
    );
    for expected in [
        "mini-server: read 38 bytes from the pipe, then end of file: \"hello from mini-client, through a pipe\"",
        "mini-client: the server answered \"the note says: a note left in a shared page\"",
        "kernel: mini-client exited with code 0",
        "kernel: mini-server exited with code 0",
        // The ledger, from kipc's counters: the pipe copied its 38 bytes in and out,
        // the call went through the kernel (the server was not yet waiting), the
        // 43-byte reply went straight into the waiting caller, the region was mapped
        // in both processes and copied nothing.
        "pipe              38 /    38 /     0; 0 pages",
        "mailbox           13 /    13 /    43; 0 pages",
        "shared region      0 /     0 /     0; 2 pages",
        "no kipc object and no frame leaked",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
}
