//! The Linux peer of the benchmarks (`cargo run -- bench --peer linux`):
//! Debian's own Linux kernel in the same QEMU (TCG, `-icount shift=0`, the
//! same CPU model less ERMS/FSRM, the same memory), with a small static C
//! program as `/init` (`qemu/peers/linux/bench.c`) doing the same work as
//! kipc's bench.
//!
//! The kernel is the installed distribution's `linux-image` package, fetched
//! with `apt-get download` (no root needed) and unpacked with `dpkg-deb`
//! into `target/peers/linux/`, once. Without it, or without a C compiler
//! that links statically, [`prepare`] says what is missing and how to get
//! it, and the bench runs kipc alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the Linux guest measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinuxResults {
    /// The kernel that ran (`vmlinuz-...`).
    pub kernel: String,
    /// (mechanism, message size, instructions per round trip).
    pub round_trips: Vec<(String, usize, u64)>,
    /// (mechanism, bytes, instructions per KiB, output verified).
    pub files: Vec<(String, usize, u64, bool)>,
}

impl LinuxResults {
    /// Reads the `LINUX ...` lines of the guest's console.
    pub fn parse(serial: &str, kernel: &str) -> Result<LinuxResults, String> {
        let mut results = LinuxResults {
            kernel: kernel.to_string(),
            ..LinuxResults::default()
        };
        let mut done = false;
        for line in serial.lines() {
            let Some(rest) = line.trim().strip_prefix("LINUX ") else {
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                ["roundtrip", mechanism, size, instructions] => results.round_trips.push((
                    mechanism.to_string(),
                    size.parse().map_err(|_| format!("bad line {line:?}"))?,
                    instructions
                        .parse()
                        .map_err(|_| format!("bad line {line:?}"))?,
                )),
                ["file", mechanism, bytes, per_kib, verified] => results.files.push((
                    mechanism.to_string(),
                    bytes.parse().map_err(|_| format!("bad line {line:?}"))?,
                    per_kib.parse().map_err(|_| format!("bad line {line:?}"))?,
                    *verified == "verified",
                )),
                ["FAIL", ..] => return Err(format!("the Linux benchmark failed: {rest}")),
                ["done"] => done = true,
                _ => {}
            }
        }
        if !done {
            return Err("the Linux guest did not finish (no `LINUX done` line)".into());
        }
        Ok(results)
    }

    /// Instructions per round trip of `mechanism` at `size` bytes.
    pub fn round_trip(&self, mechanism: &str, size: usize) -> Option<u64> {
        self.round_trips
            .iter()
            .find(|(name, bytes, _)| name == mechanism && *bytes == size)
            .map(|(_, _, instructions)| *instructions)
    }

    /// Instructions per KiB moving the file through `mechanism`.
    pub fn file(&self, mechanism: &str) -> Option<u64> {
        self.files
            .iter()
            .find(|(name, ..)| name == mechanism)
            .map(|(_, _, per_kib, _)| *per_kib)
    }
}

/// Where the peer's files are kept.
fn directory(root: &Path) -> PathBuf {
    root.join("target/peers/linux")
}

/// The kernel image (fetched once) and the initramfs with the benchmark as
/// `/init` (rebuilt from `bench.c`).
#[derive(Debug)]
pub struct LinuxPeer {
    /// `vmlinuz-...`.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initramfs: PathBuf,
}

/// Makes the kernel and the initramfs ready, or says why not and how to fix it.
pub fn prepare(root: &Path) -> Result<LinuxPeer, String> {
    let directory = directory(root);
    std::fs::create_dir_all(&directory).map_err(|error| error.to_string())?;
    let kernel = match find_kernel(&directory) {
        Some(kernel) => kernel,
        None => fetch_kernel(&directory)?,
    };
    let init = directory.join("init");
    let source = root.join("qemu/peers/linux/bench.c");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let compiled = Command::new(&compiler)
        .args(["-static", "-O2", "-o"])
        .arg(&init)
        .arg(&source)
        .output()
        .map_err(|error| {
            format!("no C compiler ({compiler}: {error}); install one with `apt-get install gcc libc6-dev`")
        })?;
    if !compiled.status.success() {
        return Err(format!(
            "compiling {} failed (a static C library is needed: `apt-get install libc6-dev`):\n{}",
            source.display(),
            String::from_utf8_lossy(&compiled.stderr)
        ));
    }
    let program = std::fs::read(&init).map_err(|error| error.to_string())?;
    let initramfs = directory.join("initramfs.cpio");
    std::fs::write(&initramfs, cpio(&program)).map_err(|error| error.to_string())?;
    Ok(LinuxPeer { kernel, initramfs })
}

fn find_kernel(directory: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(directory.join("boot")).ok()?;
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("vmlinuz-"))
        })
        .max()
}

/// `apt-get download` of the distribution's `linux-image` package (the
/// metapackage names the real one), unpacked with `dpkg-deb -x`.
fn fetch_kernel(directory: &Path) -> Result<PathBuf, String> {
    let how = "get it with `apt-get download linux-image-amd64` and the linux-image-*-amd64 \
               package it depends on, then `dpkg-deb -x PACKAGE.deb target/peers/linux`";
    eprintln!(
        "kipc-qemu: fetching Debian's Linux kernel for the peer benchmark (once; into {})",
        directory.display()
    );
    let depends = Command::new("apt-cache")
        .args(["depends", "linux-image-amd64"])
        .output()
        .map_err(|error| format!("apt-cache is not available ({error}); {how}"))?;
    let text = String::from_utf8_lossy(&depends.stdout);
    let package = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Depends: "))
        .find(|name| name.starts_with("linux-image-"))
        .ok_or_else(|| format!("apt-cache knows no linux-image-amd64 package; {how}"))?
        .to_string();
    let downloaded = Command::new("apt-get")
        .current_dir(directory)
        .args(["download", &package])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|error| format!("apt-get is not available ({error}); {how}"))?;
    if !downloaded.status.success() {
        return Err(format!(
            "`apt-get download {package}` failed: {}; {how}",
            String::from_utf8_lossy(&downloaded.stderr).trim()
        ));
    }
    let deb = std::fs::read_dir(directory)
        .map_err(|error| error.to_string())?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.extension().is_some_and(|extension| extension == "deb")
                && path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(&package))
        })
        .ok_or_else(|| format!("apt-get download left no {package} package; {how}"))?;
    let unpacked = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(directory)
        .status()
        .map_err(|error| format!("dpkg-deb is not available ({error}); {how}"))?;
    let _ = std::fs::remove_file(&deb);
    if !unpacked.success() {
        return Err(format!(
            "dpkg-deb could not unpack {}; {how}",
            deb.display()
        ));
    }
    // Only the kernel image is needed: drop the modules (hundreds of MiB).
    let _ = std::fs::remove_dir_all(directory.join("lib"));
    let _ = std::fs::remove_dir_all(directory.join("usr"));
    find_kernel(directory).ok_or_else(|| format!("{package} holds no boot/vmlinuz-*; {how}"))
}

/// A newc cpio archive holding `/dev`, `/dev/console` and `program` as `/init`.
pub fn cpio(program: &[u8]) -> Vec<u8> {
    let mut archive = Vec::new();
    let mut inode = 1;
    let mut entry = |name: &str, mode: u32, device: (u32, u32), data: &[u8]| {
        let header = format!(
            "070701{inode:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            device.0,
            device.1,
            name.len() + 1,
            0
        );
        inode += 1;
        archive.extend_from_slice(header.as_bytes());
        archive.extend_from_slice(name.as_bytes());
        archive.push(0);
        while archive.len() % 4 != 0 {
            archive.push(0);
        }
        archive.extend_from_slice(data);
        while archive.len() % 4 != 0 {
            archive.push(0);
        }
    };
    entry("dev", 0o040755, (0, 0), &[]);
    entry("dev/console", 0o020600, (5, 1), &[]);
    entry("init", 0o100755, (0, 0), program);
    entry("TRAILER!!!", 0, (0, 0), &[]);
    archive
}

/// Boots the peer under the same QEMU settings as kipc's bench and returns
/// its console output.
pub fn run(peer: &LinuxPeer, timeout: Duration) -> Result<String, String> {
    let started = Instant::now();
    let mut child = Command::new(crate::QEMU)
        .arg("-kernel")
        .arg(&peer.kernel)
        .arg("-initrd")
        .arg(&peer.initramfs)
        .args([
            "-append",
            "console=ttyS0 quiet panic=-1 mitigations=off",
            "-serial",
            "stdio",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-m",
            "256M",
            "-accel",
            "tcg",
            // Without ERMS/FSRM, Linux copies user memory 8 bytes per counted
            // instruction, as kipc's memcpy does; with them it uses one
            // `rep movsb`, which -icount counts once per byte (see
            // docs/benchmarks.md). Everything else is kipc's bench's setting.
            "-cpu",
            "max,-erms,-fsrm",
            "-icount",
            "shift=0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("starting QEMU: {error}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    loop {
        if child
            .try_wait()
            .map_err(|error| error.to_string())?
            .is_some()
        {
            break;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let serial = reader.join().unwrap_or_default();
            return Err(format!(
                "the Linux guest did not finish within {} s:\n{serial}",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(reader.join().unwrap_or_default())
}

/// The kernel image's file name, for the report.
pub fn kernel_name(peer: &LinuxPeer) -> String {
    peer.kernel
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_read_from_the_console() {
        let serial = "boot noise\nLINUX start\nLINUX roundtrip pipe 64 11648\nLINUX file shm 1048576 4200 verified\nLINUX done\n";
        let results = LinuxResults::parse(serial, "vmlinuz-x").unwrap();
        assert_eq!(results.round_trip("pipe", 64), Some(11648));
        assert_eq!(results.file("shm"), Some(4200));
        assert!(LinuxResults::parse("LINUX start\n", "k").is_err());
        assert!(LinuxResults::parse("LINUX FAIL fork: x\nLINUX done\n", "k").is_err());
    }

    #[test]
    fn the_archive_is_newc_with_a_console_and_init() {
        let archive = cpio(b"\x7fELF");
        assert!(archive.starts_with(b"070701"));
        assert_eq!(archive.len() % 4, 0);
        let text = String::from_utf8_lossy(&archive);
        assert!(text.contains("dev/console"));
        assert!(text.contains("init"));
        assert!(text.contains("TRAILER!!!"));
    }
}
