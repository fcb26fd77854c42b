//! `cargo run` lands here: build the kipc demo kernel and boot it under QEMU.

use std::process::ExitCode;
use std::time::Duration;

use kipc_qemu::{BuildOutput, Profile, RunOptions, Verdict};

const USAGE: &str = "\
Build the kipc demo kernel and boot it under QEMU.

Usage: cargo run -- [OPTIONS] [SCENARIO]
       cargo run -- bench [OPTIONS]
       cargo run -- --kernel minimal [talk]
       cargo run -- lab list | lab start NAME [DIR]
       cargo run -- grade NAME [--json FILE]

SCENARIO is what the kernel runs after boot (default: demo, the tour and the
file-transfer experiment). Kernel scenarios: demo boot timer memory modules
fault-*; any other name runs the user program of that name, or init's test
of that name (pipe, fifo, mqueue, mailbox, shm, ...).

`bench` builds in release mode, runs the benchmarks under -icount and writes
target/bench/results.json and target/bench/throughput.svg.

`lab start NAME` writes the starter tree of lab NAME (see labs/README.md) to
DIR (default ../kipc-lab-NAME) as a git repository; `grade NAME` runs that
lab's checks in the current tree, prints one line per check and the score,
keeps each failing run's log under target/grade/NAME/, and exits with 1
below full marks; `--json FILE` also writes the score as JSON.

`--kernel minimal` boots the second kernel instead: it embeds kipc through the
x86_64 adapter in under 200 lines of glue and runs one scenario, `talk` (two
programs talk through a pipe, a mailbox call and a shared region).

Options:
  --kernel NAME      demo (default) or minimal
  --release          build kernel and user programs with the release profile
  --timeout SECS     kill QEMU after SECS seconds (default 60; 0 = never)
  --append WORDS     more kernel command-line words, e.g. --append \"size_kib=4096\"
  --gdb              start halted, waiting for gdb on localhost:1234 (no timeout)
  --kvm              use KVM instead of TCG (opt-in; TCG is the default). Implies
                     --no-icount; first boots a self-check and, if KVM does not
                     work here, says why in one line and exits with 2
  --no-icount        do not count instructions (by default QEMU runs with
                     -icount shift=0, so the TSC counts guest instructions)
  --memory MIB       guest memory in MiB (default 256)
  --print-command    print the QEMU command line before booting
  --breakdown        with bench: build a kernel with phase counters and split
                     the 64-byte mailbox and pipe round trips into entry/exit,
                     decoding, kipc, copies, wake-ups, scheduler, switch, user
  --pipe-sweep       with bench: build and boot one kernel per pipe capacity
                     (4, 16, 64, 256 KiB) and print what each costs
  --peer linux       with bench: also run the same work under Debian's Linux
                     kernel in the same QEMU and print both side by side
                     (fetches the linux-image package once into target/)
  -h, --help         this text

Exit status: 0 when the scenario passed (QEMU exit 33 and its PASS line),
1 when it failed, 2 when the runner could not build or start QEMU.";

fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    match words.first().map(String::as_str) {
        Some("lab") => return lab(&words[1..]),
        Some("grade") => return grade(&words[1..]),
        _ => {}
    }
    let mut options = RunOptions::scenario("demo");
    options.echo = true;
    options.icount = true;
    let mut profile = Profile::Debug;
    let mut bench = false;
    let mut print_command = false;
    let mut peer = false;
    let mut breakdown = false;
    let mut pipe_sweep = false;
    let mut kernel = kipc_qemu::Kernel::Demo;
    let mut scenario_given = false;
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        let mut value = |name: &str| {
            arguments.next().unwrap_or_else(|| {
                eprintln!("kipc-qemu: {name} needs a value\n\n{USAGE}");
                std::process::exit(2)
            })
        };
        match argument.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--release" => profile = Profile::Release,
            "--gdb" => options.gdb = true,
            "--kvm" => {
                options.kvm = true;
                // Instruction counting needs TCG.
                options.icount = false;
            }
            "--icount" if options.kvm => {
                eprintln!("kipc-qemu: --icount needs TCG; it cannot be combined with --kvm");
                return ExitCode::from(2);
            }
            "--icount" => options.icount = true,
            "--no-icount" => options.icount = false,
            "--print-command" => print_command = true,
            "--breakdown" => breakdown = true,
            "--pipe-sweep" => pipe_sweep = true,
            "--peer" => {
                let name = value("--peer");
                if name != "linux" {
                    eprintln!("kipc-qemu: --peer takes `linux` (got {name:?})");
                    std::process::exit(2)
                }
                peer = true;
            }
            "--timeout" => {
                let seconds: u64 = value("--timeout").parse().unwrap_or_else(|_| {
                    eprintln!("kipc-qemu: --timeout takes whole seconds");
                    std::process::exit(2)
                });
                options.timeout = (seconds > 0).then(|| Duration::from_secs(seconds));
            }
            "--append" => options
                .append
                .extend(value("--append").split_whitespace().map(String::from)),
            "--kernel" => {
                let name = value("--kernel");
                kernel = kipc_qemu::Kernel::from_name(&name).unwrap_or_else(|| {
                    eprintln!("kipc-qemu: no kernel named {name:?}: demo or minimal");
                    std::process::exit(2)
                })
            }
            "--memory" => {
                options.memory_mib = value("--memory").parse().unwrap_or_else(|_| {
                    eprintln!("kipc-qemu: --memory takes a size in MiB");
                    std::process::exit(2)
                })
            }
            flag if flag.starts_with('-') => {
                eprintln!("kipc-qemu: unknown option {flag}\n\n{USAGE}");
                return ExitCode::from(2);
            }
            "bench" => bench = true,
            scenario => {
                options.scenario = scenario.to_string();
                scenario_given = true;
            }
        }
    }
    if kernel == kipc_qemu::Kernel::Minimal {
        if bench {
            eprintln!("kipc-qemu: the benchmarks run on the demo kernel only");
            return ExitCode::from(2);
        }
        if !scenario_given {
            options.scenario = "talk".into();
        } else if options.scenario != "talk" {
            eprintln!(
                "kipc-qemu: the minimal kernel runs one scenario, talk (not {:?})",
                options.scenario
            );
            return ExitCode::from(2);
        }
    }
    if bench {
        if breakdown {
            return run_breakdown(options);
        }
        if pipe_sweep {
            return run_pipe_sweep(options);
        }
        return run_bench(options, peer);
    }
    if options.gdb {
        options.timeout = None;
    }

    let artifacts = match kipc_qemu::build_kernel(kernel, profile, BuildOutput::Show) {
        Ok(artifacts) => artifacts,
        Err(error) => {
            eprintln!("kipc-qemu: {error}");
            return ExitCode::from(2);
        }
    };
    if options.kvm
        && let Err(reason) = kipc_qemu::kvm_self_check(&artifacts)
    {
        eprintln!(
            "kipc-qemu: KVM does not work on this machine: {reason}. Boot without --kvm (TCG, the default)."
        );
        return ExitCode::from(2);
    }
    if print_command {
        eprintln!(
            "kipc-qemu: {:?}",
            kipc_qemu::qemu_command(&artifacts, &options)
        );
    }
    if options.gdb {
        eprintln!(
            "kipc-qemu: QEMU is waiting for gdb on localhost:1234. In another terminal:\n    \
             gdb {} -ex 'target remote :1234'",
            artifacts.kernel.display()
        );
    }
    eprintln!(
        "kipc-qemu: booting {} (scenario {}) under {}",
        artifacts.kernel.display(),
        options.scenario,
        if options.kvm { "KVM" } else { "TCG" }
    );
    let report = match kipc_qemu::run(&artifacts, &options) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("kipc-qemu: {error}");
            return ExitCode::from(2);
        }
    };
    match report.verdict {
        Verdict::Pass => {
            eprintln!(
                "kipc-qemu: scenario {} passed in {:.2} s",
                options.scenario,
                report.duration.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Verdict::Fail(reason) => {
            if !report.qemu_stderr.trim().is_empty() {
                eprintln!("kipc-qemu: QEMU said: {}", report.qemu_stderr.trim());
            }
            eprintln!("kipc-qemu: scenario {} FAILED: {reason}", options.scenario);
            ExitCode::FAILURE
        }
    }
}

/// `cargo run -- bench`: release build, `-icount shift=0`, results to target/bench/.
fn run_bench(options: RunOptions, peer: bool) -> ExitCode {
    let artifacts = match kipc_qemu::build(Profile::Release, BuildOutput::Show) {
        Ok(artifacts) => artifacts,
        Err(error) => {
            eprintln!("kipc-qemu: {error}");
            return ExitCode::from(2);
        }
    };
    eprintln!("kipc-qemu: running the benchmarks (release kernel, TCG, -icount shift=0)...");
    let (mut results, report) = match bench_boot(&artifacts, options) {
        Ok(done) => done,
        Err(code) => return code,
    };
    if peer {
        results.linux = linux_peer();
    }
    let directory = kipc_qemu::repository_root().join("target/bench");
    let written = std::fs::create_dir_all(&directory)
        .and_then(|()| std::fs::write(directory.join("results.json"), results.json()))
        .and_then(|()| std::fs::write(directory.join("throughput.svg"), results.svg()))
        .and_then(|()| std::fs::write(directory.join("serial.log"), &report.serial));
    if let Err(error) = written {
        eprintln!("kipc-qemu: writing {}: {error}", directory.display());
        return ExitCode::FAILURE;
    }
    println!("{}", results.table());
    if results.linux.is_some() {
        println!("{}", results.comparison_table());
    }
    println!(
        "wrote {0}/results.json, {0}/throughput.svg and {0}/serial.log ({1:.1} s)",
        directory.display(),
        report.duration.as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// Boots the `bench` scenario on `artifacts` and reads its results; on
/// failure says why and gives the exit code.
fn bench_boot(
    artifacts: &kipc_qemu::Artifacts,
    mut options: RunOptions,
) -> Result<(kipc_qemu::bench::Results, kipc_qemu::RunReport), ExitCode> {
    options.scenario = "bench".into();
    options.icount = true;
    options.echo = false;
    if options.timeout == Some(Duration::from_secs(60)) {
        options.timeout = Some(Duration::from_secs(900));
    }
    let report = kipc_qemu::run(artifacts, &options).map_err(|error| {
        eprintln!("kipc-qemu: {error}");
        ExitCode::from(2)
    })?;
    if let Verdict::Fail(reason) = &report.verdict {
        eprintln!("{}", report.serial);
        eprintln!("kipc-qemu: the benchmark boot FAILED: {reason}");
        return Err(ExitCode::FAILURE);
    }
    match kipc_qemu::bench::Results::parse(&report.serial) {
        Ok(results) => Ok((results, report)),
        Err(error) => {
            eprintln!("kipc-qemu: could not read the results: {error}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// `bench --pipe-sweep`: one release kernel per pipe capacity, each benched.
fn run_pipe_sweep(options: RunOptions) -> ExitCode {
    let mut rows = Vec::new();
    for capacity in kipc_qemu::PIPE_SWEEP {
        let artifacts = match kipc_qemu::build_pipe_capacity(capacity, BuildOutput::Show) {
            Ok(artifacts) => artifacts,
            Err(error) => {
                eprintln!("kipc-qemu: {error}");
                return ExitCode::from(2);
            }
        };
        eprintln!(
            "kipc-qemu: benchmarks with {} pipes (release kernel, -icount)...",
            kipc_qemu::bench::human(capacity as u64)
        );
        match bench_boot(&artifacts, options.clone()) {
            Ok((results, _)) => rows.push((capacity, results)),
            Err(code) => return code,
        }
    }
    println!("{}", kipc_qemu::bench::pipe_sweep_table(&rows));
    ExitCode::SUCCESS
}

/// `cargo run -- lab list | lab start NAME [DIR]`.
fn lab(words: &[String]) -> ExitCode {
    use kipc_qemu::labs;
    match words.first().map(String::as_str) {
        Some("list") | None => {
            println!("kipc labs, easiest first (handouts in labs/NAME/README.md):");
            for lab in labs::LABS {
                println!(
                    "  {:<11} {:>2} h  {:>3} points  {}",
                    lab.name,
                    lab.hours,
                    lab.total(),
                    lab.title
                );
            }
            println!("start one with `cargo run -- lab start NAME [DIR]`");
            ExitCode::SUCCESS
        }
        Some("start") => {
            let Some(lab) = words.get(1).and_then(|name| labs::find(name)) else {
                eprintln!("kipc-qemu: lab start needs a lab name: {}", lab_names());
                return ExitCode::from(2);
            };
            let destination = words.get(2).map(std::path::PathBuf::from);
            match labs::start(lab, &kipc_qemu::repository_root(), destination) {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("kipc-qemu: {error}");
                    ExitCode::from(2)
                }
            }
        }
        Some(other) => {
            eprintln!("kipc-qemu: unknown lab command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `cargo run -- grade NAME [--json FILE]`.
fn grade(words: &[String]) -> ExitCode {
    use kipc_qemu::labs;
    let mut name = None;
    let mut json = None;
    let mut rest = words.iter();
    while let Some(word) = rest.next() {
        match word.as_str() {
            "--json" => json = rest.next().cloned(),
            other if name.is_none() && !other.starts_with('-') => name = Some(other.to_string()),
            other => {
                eprintln!("kipc-qemu: grade: unexpected {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(lab) = name.as_deref().and_then(labs::find) else {
        eprintln!("kipc-qemu: grade needs a lab name: {}", lab_names());
        return ExitCode::from(2);
    };
    if let Err(error) = kipc_qemu::prepare_machine() {
        eprintln!("kipc-qemu: {error}");
        return ExitCode::from(2);
    }
    let root = kipc_qemu::repository_root();
    println!("grading lab {} in {}", lab.name, root.display());
    let outcomes = labs::grade(lab, &root);
    let (earned, total) = labs::score(&outcomes);
    println!("{}: score {earned}/{total}", lab.name);
    if earned < total {
        println!(
            "  logs of the failing checks: {}",
            root.join("target/grade").join(lab.name).display()
        );
    }
    if let Some(path) = json
        && let Err(error) = std::fs::write(&path, labs::json(lab, &outcomes))
    {
        eprintln!("kipc-qemu: writing {path}: {error}");
        return ExitCode::from(2);
    }
    if earned == total {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `bench --peer linux`: the Linux guest's results, or `None` (with the
/// reason and how to fix it) when it cannot run here.
fn linux_peer() -> Option<kipc_qemu::peers::LinuxResults> {
    use kipc_qemu::peers;
    let root = kipc_qemu::repository_root();
    let peer = match peers::prepare(&root) {
        Ok(peer) => peer,
        Err(reason) => {
            eprintln!("kipc-qemu: no Linux peer, benching kipc alone: {reason}");
            return None;
        }
    };
    let kernel = peers::kernel_name(&peer);
    eprintln!("kipc-qemu: running the same work under Linux ({kernel}, TCG, -icount shift=0)...");
    let serial = match peers::run(&peer, Duration::from_secs(900)) {
        Ok(serial) => serial,
        Err(reason) => {
            eprintln!("kipc-qemu: the Linux peer failed: {reason}");
            return None;
        }
    };
    let _ = std::fs::write(root.join("target/bench/linux-serial.log"), &serial);
    match peers::LinuxResults::parse(&serial, &kernel) {
        Ok(results) => Some(results),
        Err(reason) => {
            eprintln!("kipc-qemu: {reason} (console in target/bench/linux-serial.log)");
            None
        }
    }
}

/// `bench --breakdown`: the phase counters' kernel, the round trips split.
fn run_breakdown(mut options: RunOptions) -> ExitCode {
    options.scenario = "bench".into();
    options.append.push("only=breakdown".into());
    options.icount = true;
    options.echo = false;
    let artifacts = match kipc_qemu::build_breakdown(BuildOutput::Show) {
        Ok(artifacts) => artifacts,
        Err(error) => {
            eprintln!("kipc-qemu: {error}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "kipc-qemu: splitting the round trips (release kernel with phase counters, -icount)..."
    );
    let report = match kipc_qemu::run(&artifacts, &options) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("kipc-qemu: {error}");
            return ExitCode::from(2);
        }
    };
    if let Verdict::Fail(reason) = &report.verdict {
        eprintln!("{}", report.serial);
        eprintln!("kipc-qemu: the breakdown boot FAILED: {reason}");
        return ExitCode::FAILURE;
    }
    match kipc_qemu::bench::parse_breakdown(&report.serial) {
        Ok(splits) => {
            println!("{}", kipc_qemu::bench::breakdown_table(&splits));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("kipc-qemu: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The labs' names, for error messages.
fn lab_names() -> String {
    kipc_qemu::labs::LABS
        .iter()
        .map(|lab| lab.name)
        .collect::<Vec<_>>()
        .join(", ")
}
