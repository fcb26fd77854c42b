//! Host-side runner for the kipc demo kernel.
//!
//! It prepares the machine (the `x86_64-unknown-none` Rust target, QEMU),
//! builds the kernel and the user programs with a child `cargo` into their own
//! target directories, packs the programs into a boot archive, boots QEMU with
//! a timeout, and turns what happened into a [`Verdict`].
//!
//! A boot passes only when QEMU exits with 33 (the kernel wrote 0x10 to the
//! `isa-debug-exit` port) **and** the serial log holds the scenario's
//! `KIPC-RESULT: PASS <scenario>` line. Anything else fails with a reason: the
//! kernel's own `FAIL` line, a timeout, or a reset (a triple fault under
//! `-no-reboot` makes QEMU exit with 0).

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod archive;
pub mod bench;
pub mod labs;
pub mod peers;

/// The Rust target the kernel and user programs are built for.
pub const TARGET: &str = "x86_64-unknown-none";
/// The QEMU binary the runner starts.
pub const QEMU: &str = "qemu-system-x86_64";
/// Debian package that provides [`QEMU`].
pub const QEMU_PACKAGE: &str = "qemu-system-x86";
/// QEMU exit status when the kernel reports success (0x10 << 1 | 1).
pub const EXIT_SUCCESS: i32 = 33;
/// QEMU exit status when the kernel reports failure (0x11 << 1 | 1).
pub const EXIT_FAILURE: i32 = 35;
/// Prefix of the kernel's verdict line on serial.
pub const RESULT_PREFIX: &str = "KIPC-RESULT:";
/// The user programs packed into the boot archive: every `qemu/user/src/bin/*.rs`.
pub fn user_programs() -> Vec<String> {
    let directory = repository_root().join("qemu/user/src/bin");
    let mut names: Vec<String> = std::fs::read_dir(&directory)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let name = entry.file_name().into_string().ok()?;
                    name.strip_suffix(".rs").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Which cargo profile to build with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// `dev` (the default): debug assertions on, light optimisation.
    #[default]
    Debug,
    /// `release`: what benchmarks use.
    Release,
}

impl Profile {
    fn directory(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// Everything that can stop the runner before a verdict.
#[derive(Debug)]
pub enum Error {
    /// The Rust target is missing and could not be installed.
    MissingTarget(String),
    /// QEMU is missing and could not be installed.
    MissingQemu(String),
    /// A child `cargo build` failed; holds its output.
    Build {
        /// What was being built.
        what: String,
        /// The build's output.
        output: String,
    },
    /// An I/O error while starting or talking to a child process.
    Io(String, io::Error),
    /// The guest memory asked for cannot hold the kernel and the boot archive (QEMU
    /// would start a guest that never prints anything).
    TooLittleMemory(String),
}

impl fmt::Display for Error {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingTarget(message) | Error::MissingQemu(message) => write!(out, "{message}"),
            Error::Build { what, output } => write!(out, "building {what} failed:\n{output}"),
            Error::Io(context, error) => write!(out, "{context}: {error}"),
            Error::TooLittleMemory(message) => write!(out, "{message}"),
        }
    }
}

impl std::error::Error for Error {}

/// The repository root (where the workspace `Cargo.toml` lives).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("qemu/ sits inside the repository")
        .to_path_buf()
}

/// Makes sure the Rust target and QEMU are present, installing what is
/// missing where it can; runs its checks once per process.
pub fn prepare_machine() -> Result<(), Error> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = DONE.get_or_init(|| {
        ensure_target().map_err(|error| error.to_string())?;
        ensure_qemu().map_err(|error| error.to_string())
    });
    match outcome {
        Ok(()) => Ok(()),
        Err(message) if message.contains(QEMU) => Err(Error::MissingQemu(message.clone())),
        Err(message) => Err(Error::MissingTarget(message.clone())),
    }
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

fn target_installed() -> bool {
    let Ok(output) = Command::new(rustc()).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib")
        .is_dir()
}

/// Installs the Rust target with rustup if it is missing.
pub fn ensure_target() -> Result<(), Error> {
    if target_installed() {
        return Ok(());
    }
    eprintln!(
        "kipc-qemu: the Rust target {TARGET} is missing; running `rustup target add {TARGET}`"
    );
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|error| {
            Error::MissingTarget(format!(
                "the Rust target {TARGET} is missing and rustup could not be started ({error}); \
                 install it with: rustup target add {TARGET}"
            ))
        })?;
    if status.success() && target_installed() {
        Ok(())
    } else {
        Err(Error::MissingTarget(format!(
            "`rustup target add {TARGET}` failed ({status}); run it yourself and retry"
        )))
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|directory| directory.join(program).is_file())
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Installs Debian's QEMU package if `qemu-system-x86_64` is missing and we
/// run as root with apt; otherwise says exactly what to run.
pub fn ensure_qemu() -> Result<(), Error> {
    if on_path(QEMU) {
        return Ok(());
    }
    let command = format!("apt-get install -y --no-install-recommends {QEMU_PACKAGE}");
    if !(running_as_root() && on_path("apt-get")) {
        return Err(Error::MissingQemu(format!(
            "{QEMU} is not installed; install it with: sudo apt-get update && sudo {command}"
        )));
    }
    eprintln!(
        "kipc-qemu: {QEMU} is missing; installing Debian's {QEMU_PACKAGE} (apt-get update && {command})"
    );
    let update = Command::new("apt-get").arg("update").status();
    let install = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", QEMU_PACKAGE])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    match (update, install) {
        (Ok(_), Ok(status)) if status.success() && on_path(QEMU) => Ok(()),
        (_, install) => Err(Error::MissingQemu(format!(
            "installing {QEMU_PACKAGE} failed ({install:?}); run: sudo apt-get update && sudo {command}"
        ))),
    }
}

/// Environment variables of the outer cargo that must not leak into the
/// child build (they would rebuild for the wrong target or deadlock on locks).
pub(crate) const SCRUBBED_ENVIRONMENT: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "CARGO_TARGET_DIR",
    "KIPC_PIPE_CAPACITY",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_LLVM_COV",
    "CARGO_LLVM_COV_TARGET_DIR",
    "LLVM_PROFILE_FILE",
];

/// How the child builds report progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildOutput {
    /// Let cargo print to the terminal (`cargo run`).
    Show,
    /// Capture it and include it in the error only on failure (tests).
    Capture,
}

fn cargo_build(
    crate_directory: &Path,
    target_directory: &Path,
    profile: Profile,
    output: BuildOutput,
) -> Result<(), Error> {
    cargo_build_with(crate_directory, target_directory, profile, output, &[], &[])
}

fn cargo_build_with(
    crate_directory: &Path,
    target_directory: &Path,
    profile: Profile,
    output: BuildOutput,
    features: &[&str],
    environment: &[(&str, String)],
) -> Result<(), Error> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(crate_directory)
        .arg("build")
        .arg("--target")
        .arg(TARGET)
        .arg("--target-dir")
        .arg(target_directory);
    if !features.is_empty() {
        command.arg("--features").arg(features.join(","));
    }
    if profile == Profile::Release {
        command.arg("--release");
    }
    for variable in SCRUBBED_ENVIRONMENT {
        command.env_remove(variable);
    }
    for (variable, value) in environment {
        command.env(variable, value);
    }
    let what = crate_directory.display().to_string();
    match output {
        BuildOutput::Show => {
            let status = command
                .status()
                .map_err(|error| Error::Io(format!("starting cargo for {what}"), error))?;
            if !status.success() {
                return Err(Error::Build {
                    what,
                    output: format!("cargo exited with {status}"),
                });
            }
        }
        BuildOutput::Capture => {
            let result = command
                .output()
                .map_err(|error| Error::Io(format!("starting cargo for {what}"), error))?;
            if !result.status.success() {
                return Err(Error::Build {
                    what,
                    output: String::from_utf8_lossy(&result.stderr).into_owned(),
                });
            }
        }
    }
    Ok(())
}

/// What a build produced.
#[derive(Clone, Debug)]
pub struct Artifacts {
    /// The kernel ELF, booted with `-kernel`.
    pub kernel: PathBuf,
    /// The ustar archive of user programs, passed with `-initrd`.
    pub initrd: PathBuf,
    /// The profile it was built with.
    pub profile: Profile,
}

/// Which kernel to build and boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kernel {
    /// The demo kernel (`qemu/kernel`): every mechanism, the scenarios, the benchmarks.
    #[default]
    Demo,
    /// The minimal kernel (`qemu/minimal-kernel`): kipc embedded through the `x86_64`
    /// adapter in under 200 lines of glue; one scenario, `talk`.
    Minimal,
}

impl Kernel {
    /// The name `--kernel` takes.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Demo => "demo",
            Kernel::Minimal => "minimal",
        }
    }

    /// The kernel named `name`, if any.
    pub fn from_name(name: &str) -> Option<Kernel> {
        [Kernel::Demo, Kernel::Minimal]
            .into_iter()
            .find(|kernel| kernel.name() == name)
    }

    fn crate_directory(self) -> &'static str {
        match self {
            Kernel::Demo => "qemu/kernel",
            Kernel::Minimal => "qemu/minimal-kernel",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Kernel::Demo => "kipc-kernel",
            Kernel::Minimal => "kipc-minimal-kernel",
        }
    }
}

/// Builds the user programs and the demo kernel, and packs the boot archive.
pub fn build(profile: Profile, output: BuildOutput) -> Result<Artifacts, Error> {
    build_kernel(Kernel::Demo, profile, output)
}

/// Builds the release user programs and a release demo kernel with the
/// `breakdown` feature (phase counters for `bench --breakdown`), kept apart
/// in `target/kernel-breakdown` so the normal kernel is untouched.
pub fn build_breakdown(output: BuildOutput) -> Result<Artifacts, Error> {
    build_demo_variant("target/kernel-breakdown", &["breakdown"], &[], output)
}

/// Builds the release user programs and a release demo kernel with
/// `features` and `environment`, in its own `directory` (relative to the
/// repository root) so the normal kernel is untouched.
fn build_demo_variant(
    directory: &str,
    features: &[&str],
    environment: &[(&str, String)],
    output: BuildOutput,
) -> Result<Artifacts, Error> {
    let mut artifacts = build(Profile::Release, output)?;
    let root = repository_root();
    let target = root.join(directory);
    cargo_build_with(
        &root.join(Kernel::Demo.crate_directory()),
        &target,
        Profile::Release,
        output,
        features,
        environment,
    )?;
    artifacts.kernel = target
        .join(TARGET)
        .join(Profile::Release.directory())
        .join(Kernel::Demo.binary());
    Ok(artifacts)
}

/// The pipe capacities `bench --pipe-sweep` compares (bytes).
pub const PIPE_SWEEP: [usize; 4] = [4096, 16384, 65536, 262144];

/// Builds the release user programs and a release demo kernel whose pipes
/// hold `capacity` bytes (the kernel's `KIPC_PIPE_CAPACITY`), kept apart in
/// `target/kernel-pipe-CAPACITY` so the normal kernel is untouched.
pub fn build_pipe_capacity(capacity: usize, output: BuildOutput) -> Result<Artifacts, Error> {
    build_demo_variant(
        &format!("target/kernel-pipe-{capacity}"),
        &[],
        &[("KIPC_PIPE_CAPACITY", capacity.to_string())],
        output,
    )
}

/// Builds the user programs and `kernel`, and packs the boot archive.
pub fn build_kernel(
    kernel: Kernel,
    profile: Profile,
    output: BuildOutput,
) -> Result<Artifacts, Error> {
    prepare_machine()?;
    let root = repository_root();
    let user_target = root.join("target/user");
    let kernel_target = root.join("target/kernel");
    cargo_build(&root.join("qemu/user"), &user_target, profile, output)?;
    cargo_build(
        &root.join(kernel.crate_directory()),
        &kernel_target,
        profile,
        output,
    )?;
    let binaries = user_target.join(TARGET).join(profile.directory());
    let mut programs = Vec::new();
    for name in user_programs() {
        let path = binaries.join(&name);
        let bytes = std::fs::read(&path)
            .map_err(|error| Error::Io(format!("reading {}", path.display()), error))?;
        programs.push((name.to_string(), bytes));
    }
    let initrd = root
        .join("target")
        .join(format!("initrd-{}.tar", profile.directory()));
    let packed = archive::ustar(&programs);
    // Write through a temporary name: tests build from several threads.
    let temporary = initrd.with_extension(format!("tar.{}", std::process::id()));
    std::fs::write(&temporary, packed)
        .map_err(|error| Error::Io(format!("writing {}", temporary.display()), error))?;
    std::fs::rename(&temporary, &initrd)
        .map_err(|error| Error::Io(format!("writing {}", initrd.display()), error))?;
    Ok(Artifacts {
        kernel: kernel_target
            .join(TARGET)
            .join(profile.directory())
            .join(kernel.binary()),
        initrd,
        profile,
    })
}

/// How to boot.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Scenario to run (`scenario=NAME` on the kernel command line).
    pub scenario: String,
    /// More kernel command-line words.
    pub append: Vec<String>,
    /// Kill QEMU after this long; `None` waits forever (used with `--gdb`).
    pub timeout: Option<Duration>,
    /// Start QEMU halted, waiting for gdb on localhost:1234.
    pub gdb: bool,
    /// Use KVM instead of TCG.
    pub kvm: bool,
    /// Run with `-icount shift=0`: one guest instruction per virtual ns, so
    /// the TSC counts instructions and results are deterministic.
    pub icount: bool,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Echo serial output to our stdout as it arrives.
    pub echo: bool,
}

impl RunOptions {
    /// Options for booting `scenario` in a test: TCG, 60 s timeout, no echo.
    pub fn scenario(scenario: &str) -> Self {
        Self {
            scenario: scenario.into(),
            append: Vec::new(),
            timeout: Some(Duration::from_secs(60)),
            gdb: false,
            kvm: false,
            icount: false,
            memory_mib: 256,
            echo: false,
        }
    }

    /// The full kernel command line (`icount=1` tells user programs that
    /// the time-stamp counter counts guest instructions).
    pub fn command_line(&self) -> String {
        let mut line = format!("scenario={}", self.scenario);
        if self.icount && !self.kvm {
            line.push_str(" icount=1");
        }
        for word in &self.append {
            line.push(' ');
            line.push_str(word);
        }
        line
    }
}

/// What the runner concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Exit code 33 and the scenario's PASS line.
    Pass,
    /// Anything else, with the reason.
    Fail(String),
}

/// The full record of one boot.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The verdict.
    pub verdict: Verdict,
    /// QEMU's exit status (`None` if it was killed).
    pub exit_status: Option<i32>,
    /// Whether the timeout killed QEMU.
    pub timed_out: bool,
    /// Everything the kernel printed on serial.
    pub serial: String,
    /// What QEMU itself printed on stderr.
    pub qemu_stderr: String,
    /// Wall-clock time from start to exit.
    pub duration: Duration,
}

impl RunReport {
    /// Whether the boot passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

/// Limits how many QEMUs run at once (one per core): tests start many.
struct Slots {
    free: Mutex<usize>,
    released: Condvar,
}

struct SlotGuard(&'static Slots);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        *self
            .0
            .free
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) += 1;
        self.0.released.notify_one();
    }
}

fn take_slot() -> SlotGuard {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| Slots {
        free: Mutex::new(
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(1),
        ),
        released: Condvar::new(),
    });
    let mut free = slots
        .free
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    while *free == 0 {
        free = slots
            .released
            .wait(free)
            .unwrap_or_else(|poison| poison.into_inner());
    }
    *free -= 1;
    SlotGuard(slots)
}

/// The QEMU command line for a boot.
pub fn qemu_command(artifacts: &Artifacts, options: &RunOptions) -> Command {
    let mut command = Command::new(QEMU);
    command
        .arg("-kernel")
        .arg(&artifacts.kernel)
        .arg("-initrd")
        .arg(&artifacts.initrd)
        .arg("-append")
        .arg(options.command_line())
        .args([
            "-serial",
            "stdio",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-m")
        .arg(format!("{}M", options.memory_mib));
    if options.kvm {
        // `-cpu host` and `-cpu max` make QEMU 7.2 abort on these machines (it cannot
        // set MSR 0x10a under KVM); the baseline model boots. Instruction counting
        // needs TCG, so a KVM boot never gets `-icount`.
        command.args(["-accel", "kvm", "-cpu", "qemu64"]);
    } else {
        command.args(["-accel", "tcg", "-cpu", "max"]);
        if options.icount {
            command.args(["-icount", "shift=0"]);
        }
    }
    if options.gdb {
        command.args(["-s", "-S"]);
    }
    command
}

/// Whether KVM can run this project's kernels here: boots the `processes` scenario (ring
/// 3, system calls, two processes) under KVM with a short timeout. `Err` holds one line
/// saying why not. A boot that never reaches QEMU (no `/dev/kvm`) fails the same way.
pub fn kvm_self_check(artifacts: &Artifacts) -> Result<(), String> {
    let mut options = RunOptions::scenario("processes");
    options.kvm = true;
    options.timeout = Some(Duration::from_secs(20));
    let report =
        run(artifacts, &options).map_err(|error| format!("QEMU did not start: {error}"))?;
    if report.passed() {
        return Ok(());
    }
    Err(kvm_failure_reason(&report))
}

/// One line on why a KVM self-check boot failed, from what it printed.
pub fn kvm_failure_reason(report: &RunReport) -> String {
    // QEMU's own errors first (its warnings about CPU features are not failures),
    // then a user process the kernel had to kill, then the verdict.
    let qemu = report
        .qemu_stderr
        .lines()
        .map(str::trim)
        .find(|line| line.contains("error") || line.contains("Assertion"));
    let killed = report
        .serial
        .lines()
        .find(|line| line.contains(") killed:"));
    match (qemu, killed) {
        (Some(line), _) => format!("QEMU failed under KVM: {line}"),
        (None, Some(line)) => format!(
            "the kernel boots under KVM but its user processes do not run ({})",
            line.trim_start_matches("kernel: ")
        ),
        (None, None) => format!("the self-check boot failed under KVM: {:?}", report.verdict),
    }
}

/// The least guest memory, in MiB, that holds `artifacts`: QEMU places the boot archive
/// at the top of RAM and the kernel image (with its .bss, which the file does not hold)
/// from 1 MiB, so both plus room for the kernel's tables must fit.
pub fn minimum_memory_mib(artifacts: &Artifacts) -> Result<u64, Error> {
    let size = |path: &Path| {
        std::fs::metadata(path)
            .map(|metadata| metadata.len())
            .map_err(|error| Error::Io(format!("reading {}", path.display()), error))
    };
    // The demo kernel's image with its .bss ends below 6 MiB (its banner says where).
    const KERNEL_END_MIB: u64 = 6;
    const HEADROOM_MIB: u64 = 2; // page tables, stacks, the first processes
    Ok(KERNEL_END_MIB + size(&artifacts.initrd)?.div_ceil(1 << 20) + HEADROOM_MIB)
}

fn check_memory(artifacts: &Artifacts, memory_mib: u64) -> Result<(), Error> {
    let minimum = minimum_memory_mib(artifacts)?;
    if memory_mib < minimum {
        return Err(Error::TooLittleMemory(format!(
            "{memory_mib} MiB of guest memory cannot hold the kernel and the {} MiB boot archive; use --memory {minimum} or more",
            std::fs::metadata(&artifacts.initrd)
                .map_or(0, |m| m.len())
                .div_ceil(1 << 20)
        )));
    }
    Ok(())
}

/// Boots the kernel once and judges the outcome.
pub fn run(artifacts: &Artifacts, options: &RunOptions) -> Result<RunReport, Error> {
    prepare_machine()?;
    check_memory(artifacts, u64::from(options.memory_mib))?;
    let _slot = take_slot();
    let started = Instant::now();
    let mut child = qemu_command(artifacts, options)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| Error::Io(format!("starting {QEMU}"), error))?;
    let serial = Arc::new(Mutex::new(String::new()));
    let stdout = child.stdout.take().expect("stdout is piped");
    let echo = options.echo;
    let reader = {
        let serial = Arc::clone(&serial);
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = Vec::new();
            while lines.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                let text = String::from_utf8_lossy(&line).replace('\r', "");
                if echo {
                    print!("{text}");
                    let _ = io::stdout().flush();
                }
                serial
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .push_str(&text);
                line.clear();
            }
        })
    };
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let mut timed_out = false;
    let status: Option<ExitStatus> = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(error) => return Err(Error::Io("waiting for QEMU".into(), error)),
        }
        if options
            .timeout
            .is_some_and(|limit| started.elapsed() >= limit)
        {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let duration = started.elapsed();
    let _ = reader.join();
    let qemu_stderr = stderr_reader.join().unwrap_or_default();
    let serial = std::mem::take(&mut *serial.lock().unwrap_or_else(|poison| poison.into_inner()));
    let exit_status = status.and_then(|status| status.code());
    let verdict = judge(
        &options.scenario,
        exit_status,
        timed_out,
        options.timeout,
        &serial,
        &qemu_stderr,
    );
    Ok(RunReport {
        verdict,
        exit_status,
        timed_out,
        serial,
        qemu_stderr,
        duration,
    })
}

/// Decides the verdict from the exit status and the serial log.
pub fn judge(
    scenario: &str,
    exit_status: Option<i32>,
    timed_out: bool,
    timeout: Option<Duration>,
    serial: &str,
    qemu_stderr: &str,
) -> Verdict {
    let fail_line = serial.lines().find(|line| {
        line.starts_with(RESULT_PREFIX)
            && line[RESULT_PREFIX.len()..].trim_start().starts_with("FAIL")
    });
    let pass_line = format!("{RESULT_PREFIX} PASS {scenario}");
    let passed_line = serial.lines().any(|line| line.trim_end() == pass_line);
    if timed_out {
        let last = serial
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("(nothing)");
        return Verdict::Fail(format!(
            "timed out after {:.1} s with no verdict; the kernel hung or looped (last serial line: {last:?})",
            timeout.unwrap_or_default().as_secs_f64()
        ));
    }
    if let Some(line) = fail_line {
        return Verdict::Fail(line[RESULT_PREFIX.len()..].trim().to_string());
    }
    match exit_status {
        Some(EXIT_SUCCESS) if passed_line => Verdict::Pass,
        Some(EXIT_SUCCESS) => Verdict::Fail(format!(
            "QEMU exited with the success code {EXIT_SUCCESS} but the kernel never printed `{pass_line}`"
        )),
        Some(0) => Verdict::Fail(
            "QEMU exited with status 0: the machine reset, which under -no-reboot means a triple fault \
             (debug with `-d int,cpu_reset`)"
                .to_string(),
        ),
        Some(EXIT_FAILURE) => Verdict::Fail("the kernel exited with the failure code but printed no FAIL line".into()),
        Some(code) => Verdict::Fail(format!("QEMU exited with status {code}: {}", qemu_stderr.trim())),
        None => Verdict::Fail(format!("QEMU was killed by a signal: {}", qemu_stderr.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = "banner\nKIPC-RESULT: PASS demo\n";

    #[test]
    fn pass_needs_exit_code_and_line() {
        assert_eq!(
            judge("demo", Some(33), false, None, PASS, ""),
            Verdict::Pass
        );
        assert!(matches!(
            judge("demo", Some(0), false, None, PASS, ""),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge("demo", Some(33), false, None, "banner\n", ""),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge("other", Some(33), false, None, PASS, ""),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn kvm_boots_never_count_instructions() {
        let artifacts = Artifacts {
            kernel: PathBuf::from("kernel"),
            initrd: PathBuf::from("initrd"),
            profile: Profile::Debug,
        };
        let mut options = RunOptions::scenario("demo");
        options.icount = true;
        options.kvm = true;
        let command = format!("{:?}", qemu_command(&artifacts, &options));
        assert!(
            command.contains("\"kvm\"") && !command.contains("icount"),
            "{command}"
        );
        options.kvm = false;
        let command = format!("{:?}", qemu_command(&artifacts, &options));
        assert!(
            command.contains("\"tcg\"") && command.contains("icount"),
            "{command}"
        );
    }

    #[test]
    fn kvm_failures_are_one_line_with_the_cause() {
        let mut report = RunReport {
            verdict: Verdict::Fail("init exited with code 57005".into()),
            serial: "kernel: process 0 (init) killed: #PF page fault at address 0xffffffff80139a82 (rip 0xffffffff80139a82); its 41 pages go back\n".into(),
            qemu_stderr: String::new(),
            exit_status: Some(35),
            timed_out: false,
            duration: Duration::from_secs(1),
        };
        let reason = kvm_failure_reason(&report);
        assert!(reason.starts_with("the kernel boots under KVM but its user processes do not run (process 0 (init) killed: #PF"), "{reason}");
        report.qemu_stderr =
            "\nqemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nmore\n".into();
        assert_eq!(
            kvm_failure_reason(&report),
            "QEMU failed under KVM: qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69"
        );
        assert!(!kvm_failure_reason(&report).contains('\n'));
    }

    #[test]
    fn kernel_fail_line_wins() {
        let log = "KIPC-RESULT: FAIL demo: kernel panic: boom\n";
        assert_eq!(
            judge("demo", Some(35), false, None, log, ""),
            Verdict::Fail("FAIL demo: kernel panic: boom".into())
        );
    }

    #[test]
    fn timeout_names_the_last_line() {
        let Verdict::Fail(reason) = judge(
            "demo",
            None,
            true,
            Some(Duration::from_secs(3)),
            "a\nstuck here\n",
            "",
        ) else {
            panic!("a timeout must fail")
        };
        assert!(
            reason.contains("timed out after 3.0 s") && reason.contains("stuck here"),
            "{reason}"
        );
    }
}
