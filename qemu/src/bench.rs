//! Benchmark results: parsed from the kernel's serial log, turned into a
//! table, a JSON file and an SVG chart.
//!
//! The `bench` user program prints `BENCH ...` lines and runs the file
//! experiment at several sizes, whose `EXPERIMENT ...` lines carry bytes,
//! bytes copied by direction and the guest-instruction count (the TSC under
//! `-icount shift=0`). Everything here is arithmetic on those counts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Mechanisms in the order tables and charts list them.
pub const MECHANISMS: [&str; 8] = [
    "pipe",
    "fifo",
    "mqueue",
    "mailbox",
    "mailbox-regs",
    "mailbox-direct",
    "shm",
    "loan",
];

/// One latency measurement: `round_trips` messages of `size` bytes there and back.
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    /// Mechanism name.
    pub mechanism: String,
    /// Message size in bytes.
    pub size: u64,
    /// Round trips measured.
    pub round_trips: u64,
    /// Guest instructions for all of them.
    pub instructions: u64,
}

impl Latency {
    /// Guest instructions per round trip.
    pub fn per_round_trip(&self) -> f64 {
        self.instructions as f64 / self.round_trips.max(1) as f64
    }
}

/// One file transfer of the experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    /// Mechanism name.
    pub mechanism: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Bytes copied in all directions (the ledger's total).
    pub copied: u64,
    /// Guest instructions from start to finish.
    pub instructions: u64,
    /// System calls made.
    pub syscalls: u64,
    /// Context switches.
    pub context_switches: u64,
    /// Whether the kernel's checksum of the output matched the input.
    pub verified: bool,
    /// Bytes per step (a page, or larger for pipes, FIFOs and regions).
    pub chunk: u64,
}

impl Transfer {
    /// Copies per byte of payload, from the ledger.
    pub fn copies_per_byte(&self) -> f64 {
        self.copied as f64 / self.bytes.max(1) as f64
    }

    /// Guest instructions per KiB moved.
    pub fn instructions_per_kib(&self) -> f64 {
        self.instructions as f64 / (self.bytes as f64 / 1024.0)
    }
}

/// Everything one `bench` boot measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Results {
    /// Bytes the memcpy measurement copied.
    pub memcpy_bytes: u64,
    /// Guest instructions it took.
    pub memcpy_instructions: u64,
    /// Named per-call costs (`null`, `pipe_pairs`, ...), for 1000 calls each.
    pub syscalls: BTreeMap<String, u64>,
    /// Latency measurements.
    pub latency: Vec<Latency>,
    /// File transfers in page-sized steps.
    pub transfers: Vec<Transfer>,
    /// 1 MiB transfers in larger steps (pipes, FIFOs, shared regions).
    pub chunked: Vec<Transfer>,
    /// Static size of the demo kernel's `Ipc` and of `kipc::MinimalIpc`, in bytes.
    pub footprint: Option<(u64, u64)>,
    /// The copy methods compared (name, instructions per KiB): `rep movsb`,
    /// `rep movsq`, a loop of 8-byte moves.
    pub copy_methods: Vec<(String, f64)>,
    /// The same work measured under Linux (`--peer linux`), if it ran.
    pub linux: Option<crate::peers::LinuxResults>,
}

fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .collect()
}

fn number(fields: &BTreeMap<&str, &str>, key: &str) -> Result<u64, String> {
    fields
        .get(key)
        .ok_or_else(|| format!("missing {key}"))?
        .parse()
        .map_err(|error| format!("{key}: {error}"))
}

impl Results {
    /// Parses the serial log of a `bench` boot.
    pub fn parse(serial: &str) -> Result<Results, String> {
        let mut results = Results::default();
        for line in serial.lines() {
            let line = line.trim();
            let context = |error: String| format!("{error} in {line:?}");
            if let Some(rest) = line.strip_prefix("BENCH memcpy ") {
                let fields = fields(rest);
                results.memcpy_bytes = number(&fields, "bytes").map_err(context)?;
                results.memcpy_instructions = number(&fields, "instructions").map_err(context)?;
            } else if let Some(rest) = line.strip_prefix("BENCH copy ") {
                let fields = fields(rest);
                let kib = number(&fields, "bytes").map_err(context)? as f64 / 1024.0;
                for (key, name) in [
                    ("movsq", "rep movsq"),
                    ("movsb", "rep movsb"),
                    ("loop", "8-byte loop"),
                ] {
                    let instructions = number(&fields, key).map_err(context)?;
                    results
                        .copy_methods
                        .push((name.to_string(), instructions as f64 / kib.max(1.0)));
                }
            } else if let Some(rest) = line.strip_prefix("BENCH syscall ") {
                for (key, value) in fields(rest) {
                    let value = value
                        .parse()
                        .map_err(|error| context(format!("{key}: {error}")))?;
                    results.syscalls.insert(key.to_string(), value);
                }
            } else if let Some(rest) = line.strip_prefix("BENCH latency ") {
                let fields = fields(rest);
                results.latency.push(Latency {
                    mechanism: fields.get("mechanism").unwrap_or(&"?").to_string(),
                    size: number(&fields, "size").map_err(context)?,
                    round_trips: number(&fields, "round_trips").map_err(context)?,
                    instructions: number(&fields, "instructions").map_err(context)?,
                });
            } else if let Some(rest) = line.strip_prefix("KIPC-FOOTPRINT ") {
                let fields = fields(rest);
                results.footprint = Some((
                    number(&fields, "kernel").map_err(context)?,
                    number(&fields, "minimal").map_err(context)?,
                ));
            } else if let Some(rest) = line.strip_prefix("EXPERIMENT ") {
                let fields = fields(rest);
                let copied = [
                    "user_to_kernel",
                    "kernel_to_user",
                    "kernel_to_kernel",
                    "user_to_user",
                ]
                .iter()
                .map(|key| number(&fields, key))
                .sum::<Result<u64, String>>()
                .map_err(context)?;
                let transfer = Transfer {
                    mechanism: fields.get("mechanism").unwrap_or(&"?").to_string(),
                    bytes: number(&fields, "bytes").map_err(context)?,
                    copied,
                    instructions: number(&fields, "tsc").map_err(context)?,
                    syscalls: number(&fields, "syscalls").map_err(context)?,
                    context_switches: number(&fields, "context_switches").map_err(context)?,
                    verified: fields.get("verified") == Some(&"yes"),
                    chunk: number(&fields, "chunk").unwrap_or(4096),
                };
                if transfer.chunk == 4096 {
                    results.transfers.push(transfer);
                } else {
                    results.chunked.push(transfer);
                }
            }
        }
        if results.memcpy_instructions == 0 {
            return Err("no `BENCH memcpy` line: the benchmark did not run".into());
        }
        Ok(results)
    }

    /// Guest instructions per KiB of memcpy.
    pub fn memcpy_per_kib(&self) -> f64 {
        self.memcpy_instructions as f64 / (self.memcpy_bytes as f64 / 1024.0)
    }

    /// A mechanism's copy limit in instructions per KiB: memcpy cost times
    /// copies per byte (0 for a mechanism that copies nothing).
    pub fn limit_per_kib(&self, transfer: &Transfer) -> f64 {
        self.memcpy_per_kib() * transfer.copies_per_byte()
    }

    /// How close a copy-based transfer comes to its limit (1.0 = at the
    /// limit); `None` for a mechanism that copies nothing.
    pub fn ratio_to_limit(&self, transfer: &Transfer) -> Option<f64> {
        (transfer.copied > 0)
            .then(|| self.limit_per_kib(transfer) / transfer.instructions_per_kib())
    }

    /// For zero-copy transfers: cost relative to copying the bytes once.
    pub fn relative_to_one_copy(&self, transfer: &Transfer) -> f64 {
        transfer.instructions_per_kib() / self.memcpy_per_kib()
    }

    /// The console table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if let Some((kernel, minimal)) = self.footprint {
            let _ = writeln!(
                out,
                "kipc footprint: the demo kernel's Ipc {kernel} bytes ({:.0} KiB); kipc::MinimalIpc {minimal} bytes ({:.1} KiB)",
                kernel as f64 / 1024.0,
                minimal as f64 / 1024.0
            );
        }
        let _ = writeln!(
            out,
            "guest memcpy: {:.0} instructions per KiB ({} bytes in {} instructions)",
            self.memcpy_per_kib(),
            self.memcpy_bytes,
            self.memcpy_instructions
        );
        if !self.copy_methods.is_empty() {
            let methods: Vec<String> = self
                .copy_methods
                .iter()
                .map(|(name, per_kib)| format!("{name} {per_kib:.0}"))
                .collect();
            let _ = writeln!(
                out,
                "copy methods, instructions per KiB: {} (memcpy, and so every kernel copy, is rep movsq)",
                methods.join(", ")
            );
        }
        if !self.syscalls.is_empty() {
            let _ = write!(out, "per system call (mean of 1000):");
            for (name, instructions) in &self.syscalls {
                if name != "calls" {
                    let _ = write!(out, " {name} {}", instructions / 1000);
                }
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "\nround trip, guest instructions per message there and back:"
        );
        let sizes: Vec<u64> = {
            let mut sizes: Vec<u64> = self.latency.iter().map(|l| l.size).collect();
            sizes.sort_unstable();
            sizes.dedup();
            sizes
        };
        let _ = write!(out, "  {:<15}", "mechanism");
        for size in &sizes {
            let _ = write!(out, " {:>9}", format!("{size} B"));
        }
        let _ = writeln!(out);
        for mechanism in MECHANISMS {
            let row: Vec<&Latency> = self
                .latency
                .iter()
                .filter(|l| l.mechanism == mechanism)
                .collect();
            if row.is_empty() {
                continue;
            }
            let _ = write!(out, "  {mechanism:<15}");
            for size in &sizes {
                match row.iter().find(|l| l.size == *size) {
                    Some(latency) => {
                        let _ = write!(out, " {:>9.0}", latency.per_round_trip());
                    }
                    None => {
                        let _ = write!(out, " {:>9}", "-");
                    }
                }
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "\nfile transfer, guest instructions per KiB (copies per byte; share of the copy limit):"
        );
        let mut sizes: Vec<u64> = self.transfers.iter().map(|t| t.bytes).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let _ = write!(out, "  {:<15}", "mechanism");
        for size in &sizes {
            let _ = write!(out, " {:>18}", human(*size));
        }
        let _ = writeln!(out);
        for mechanism in MECHANISMS {
            let row: Vec<&Transfer> = self
                .transfers
                .iter()
                .filter(|t| t.mechanism == mechanism)
                .collect();
            if row.is_empty() {
                continue;
            }
            let _ = write!(out, "  {mechanism:<15}");
            for size in &sizes {
                let cell = match row.iter().find(|t| t.bytes == *size) {
                    Some(transfer) => match self.ratio_to_limit(transfer) {
                        Some(ratio) => format!(
                            "{:.0} ({:.0}; {:.0}%)",
                            transfer.instructions_per_kib(),
                            transfer.copies_per_byte(),
                            ratio * 100.0
                        ),
                        None => format!(
                            "{:.0} (0; {:.2}x1)",
                            transfer.instructions_per_kib(),
                            self.relative_to_one_copy(transfer)
                        ),
                    },
                    None => "-".to_string(),
                };
                let _ = write!(out, " {cell:>18}");
            }
            let _ = writeln!(out);
        }
        let unverified: Vec<String> = self
            .transfers
            .iter()
            .filter(|t| !t.verified)
            .map(|t| format!("{} at {}", t.mechanism, human(t.bytes)))
            .collect();
        if unverified.is_empty() {
            let _ = writeln!(
                out,
                "  every output file matched its input (kernel checksum)"
            );
        } else {
            let _ = writeln!(out, "  NOT VERIFIED: {}", unverified.join(", "));
        }
        let _ = writeln!(
            out,
            "  (0; Nx1) = a zero-copy transfer costing N times one memcpy of the same bytes"
        );
        if !self.chunked.is_empty() {
            let _ = writeln!(
                out,
                "\n1 MiB in larger steps, guest instructions per KiB (copies per byte; share of the copy limit):"
            );
            let _ = write!(out, "  {:<14}", "mechanism");
            for chunk in CHUNKS {
                let _ = write!(out, " {:>18}", format!("{} chunks", human(chunk)));
            }
            let _ = writeln!(out);
            for mechanism in ["pipe", "fifo", "shm"] {
                let _ = write!(out, "  {mechanism:<14}");
                for chunk in CHUNKS {
                    let found = self.transfers.iter().chain(&self.chunked).find(|t| {
                        t.mechanism == mechanism && t.bytes == 1 << 20 && t.chunk == chunk
                    });
                    let cell = match found {
                        Some(t) => format!(
                            "{:.0} ({:.0}; {:.0}%)",
                            t.instructions_per_kib(),
                            t.copies_per_byte(),
                            self.ratio_to_limit(t).unwrap_or(0.0) * 100.0
                        ),
                        None => "-".to_string(),
                    };
                    let _ = write!(out, " {cell:>18}");
                }
                let _ = writeln!(out);
            }
            let _ = writeln!(
                out,
                "  (queues and mailboxes carry at most a page per message in this kernel; a region holds at most 64 pages, so no 256 KiB slots)"
            );
        }
        out
    }

    /// kipc's round trip of `mechanism` at `size` bytes, per round trip.
    pub fn round_trip(&self, mechanism: &str, size: u64) -> Option<f64> {
        self.latency
            .iter()
            .find(|l| l.mechanism == mechanism && l.size == size)
            .map(Latency::per_round_trip)
    }

    /// kipc's 1 MiB transfer through `mechanism`, instructions per KiB.
    pub fn file_per_kib(&self, mechanism: &str) -> Option<f64> {
        self.transfers
            .iter()
            .find(|t| t.mechanism == mechanism && t.bytes == 1 << 20)
            .map(Transfer::instructions_per_kib)
    }

    /// The 1 MiB pipe transfer in `chunk`-byte steps: instructions per KiB and
    /// share of the copy limit.
    pub fn pipe_file(&self, chunk: u64) -> Option<(f64, f64)> {
        let transfer = self
            .transfers
            .iter()
            .chain(&self.chunked)
            .find(|t| t.mechanism == "pipe" && t.bytes == 1 << 20 && t.chunk == chunk)?;
        Some((
            transfer.instructions_per_kib(),
            self.ratio_to_limit(transfer)?,
        ))
    }

    /// The rows kipc and Linux both measured: (what, kipc, Linux).
    pub fn comparison(&self) -> Vec<(String, f64, f64)> {
        let Some(linux) = &self.linux else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for size in [64u64, 4096] {
            for mechanism in ["pipe", "mqueue", "shm"] {
                if let (Some(ours), Some(theirs)) = (
                    self.round_trip(mechanism, size),
                    linux.round_trip(mechanism, size as usize),
                ) {
                    rows.push((
                        format!("{mechanism} round trip, {}", human(size)),
                        ours,
                        theirs as f64,
                    ));
                }
            }
        }
        for mechanism in ["pipe", "shm"] {
            if let (Some(ours), Some(theirs)) =
                (self.file_per_kib(mechanism), linux.file(mechanism))
            {
                rows.push((
                    format!("1 MiB file by {mechanism}, per KiB"),
                    ours,
                    theirs as f64,
                ));
            }
        }
        rows
    }

    /// The side-by-side table of kipc and Linux, if Linux ran.
    pub fn comparison_table(&self) -> String {
        let Some(linux) = &self.linux else {
            return String::new();
        };
        let mut out = format!(
            "kipc and Linux ({}) in the same QEMU, guest instructions (4 KiB chunks for files):\n",
            linux.kernel
        );
        let _ = writeln!(
            out,
            "  {:<32} {:>10} {:>10} {:>14}",
            "measurement", "kipc", "Linux", "Linux / kipc"
        );
        for (what, ours, theirs) in self.comparison() {
            let _ = writeln!(
                out,
                "  {what:<32} {ours:>10.0} {theirs:>10.0} {:>13.1}x",
                theirs / ours.max(1.0)
            );
        }
        let unverified: Vec<&str> = linux
            .files
            .iter()
            .filter(|file| !file.3)
            .map(|file| file.0.as_str())
            .collect();
        if !unverified.is_empty() {
            let _ = writeln!(
                out,
                "  Linux output NOT VERIFIED: {}",
                unverified.join(", ")
            );
        }
        out
    }

    /// The results as JSON.
    pub fn json(&self) -> String {
        let mut out = String::from("{\n");
        let _ = writeln!(
            out,
            "  \"unit\": \"guest instructions (QEMU -icount shift=0)\","
        );
        if let Some((kernel, minimal)) = self.footprint {
            let _ = writeln!(
                out,
                "  \"footprint_bytes\": {{\"demo_kernel_ipc\": {kernel}, \"minimal_ipc\": {minimal}}},"
            );
        }
        let _ = writeln!(
            out,
            "  \"memcpy\": {{\"bytes\": {}, \"instructions\": {}, \"instructions_per_kib\": {:.2}}},",
            self.memcpy_bytes,
            self.memcpy_instructions,
            self.memcpy_per_kib()
        );
        if !self.copy_methods.is_empty() {
            let methods: Vec<String> = self
                .copy_methods
                .iter()
                .map(|(name, per_kib)| format!("\"{name}\": {per_kib:.2}"))
                .collect();
            let _ = writeln!(
                out,
                "  \"copy_methods_per_kib\": {{{}}},",
                methods.join(", ")
            );
        }
        let calls: Vec<String> = self
            .syscalls
            .iter()
            .map(|(name, value)| format!("\"{name}\": {value}"))
            .collect();
        let _ = writeln!(out, "  \"syscalls_per_1000\": {{{}}},", calls.join(", "));
        let latency: Vec<String> = self
            .latency
            .iter()
            .map(|l| {
                format!(
                    "    {{\"mechanism\": \"{}\", \"size\": {}, \"round_trips\": {}, \"instructions\": {}, \"per_round_trip\": {:.1}}}",
                    l.mechanism,
                    l.size,
                    l.round_trips,
                    l.instructions,
                    l.per_round_trip()
                )
            })
            .collect();
        let _ = writeln!(out, "  \"latency\": [\n{}\n  ],", latency.join(",\n"));
        let transfers: Vec<String> = self
            .transfers
            .iter()
            .map(|t| {
                let ratio = self
                    .ratio_to_limit(t)
                    .map_or("null".to_string(), |ratio| format!("{ratio:.4}"));
                format!(
                    "    {{\"mechanism\": \"{}\", \"bytes\": {}, \"copied_bytes\": {}, \"copies_per_byte\": {:.4}, \"instructions\": {}, \"instructions_per_kib\": {:.1}, \"limit_instructions_per_kib\": {:.1}, \"ratio_to_limit\": {ratio}, \"relative_to_one_copy\": {:.4}, \"syscalls\": {}, \"context_switches\": {}, \"verified\": {}}}",
                    t.mechanism,
                    t.bytes,
                    t.copied,
                    t.copies_per_byte(),
                    t.instructions,
                    t.instructions_per_kib(),
                    self.limit_per_kib(t),
                    self.relative_to_one_copy(t),
                    t.syscalls,
                    t.context_switches,
                    t.verified
                )
            })
            .collect();
        let _ = write!(out, "  \"transfers\": [\n{}\n  ]", transfers.join(",\n"));
        let chunked: Vec<String> = self
            .chunked
            .iter()
            .map(|t| {
                format!(
                    "    {{\"mechanism\": \"{}\", \"bytes\": {}, \"chunk\": {}, \"copies_per_byte\": {:.4}, \"instructions_per_kib\": {:.1}, \"ratio_to_limit\": {:.4}, \"syscalls\": {}, \"verified\": {}}}",
                    t.mechanism,
                    t.bytes,
                    t.chunk,
                    t.copies_per_byte(),
                    t.instructions_per_kib(),
                    self.ratio_to_limit(t).unwrap_or(0.0),
                    t.syscalls,
                    t.verified
                )
            })
            .collect();
        let _ = write!(out, ",\n  \"chunked\": [\n{}\n  ]", chunked.join(",\n"));
        if let Some(linux) = &self.linux {
            let rows: Vec<String> = self
                .comparison()
                .iter()
                .map(|(what, ours, theirs)| {
                    format!(
                        "      {{\"measurement\": \"{what}\", \"kipc\": {ours:.1}, \"linux\": {theirs:.1}, \"linux_over_kipc\": {:.3}}}",
                        theirs / ours.max(1.0)
                    )
                })
                .collect();
            let _ = write!(
                out,
                ",\n  \"linux\": {{\n    \"kernel\": \"{}\",\n    \"comparison\": [\n{}\n    ]\n  }}",
                linux.kernel,
                rows.join(",\n")
            );
        }
        out.push_str("\n}\n");
        out
    }

    /// Throughput against transfer size, one line per mechanism, with the
    /// copy limits (memcpy throughput / copies per byte) as dashed lines.
    pub fn svg(&self) -> String {
        const WIDTH: f64 = 760.0;
        const HEIGHT: f64 = 440.0;
        const LEFT: f64 = 70.0;
        const RIGHT: f64 = 120.0;
        const TOP: f64 = 40.0;
        const BOTTOM: f64 = 60.0;
        const COLORS: [&str; 7] = [
            "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
        ];
        // Throughput in KiB per million guest instructions.
        let throughput = |t: &Transfer| 1_000_000.0 / t.instructions_per_kib().max(1.0);
        let memcpy = 1_000_000.0 / self.memcpy_per_kib().max(1.0);
        let mut sizes: Vec<u64> = self.transfers.iter().map(|t| t.bytes).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let (low, high) = match (sizes.first(), sizes.last()) {
            (Some(&low), Some(&high)) if high > low => ((low as f64).log2(), (high as f64).log2()),
            _ => (0.0, 1.0),
        };
        let peak = self
            .transfers
            .iter()
            .map(throughput)
            .fold(memcpy / 2.0, f64::max)
            * 1.1;
        let x = |bytes: u64| {
            LEFT + ((bytes as f64).log2() - low) / (high - low) * (WIDTH - LEFT - RIGHT)
        };
        let y = |value: f64| HEIGHT - BOTTOM - value / peak * (HEIGHT - TOP - BOTTOM);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">"
        );
        let _ = writeln!(out, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">kipc file transfer: throughput vs size (higher is better)</text>",
            (WIDTH - RIGHT + LEFT) / 2.0
        );
        // Axes.
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
            HEIGHT - BOTTOM,
            WIDTH - RIGHT,
            HEIGHT - BOTTOM
        );
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"black\"/>",
            HEIGHT - BOTTOM
        );
        for &size in &sizes {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x(size),
                HEIGHT - BOTTOM + 18.0,
                human(size)
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">transfer size (log scale)</text>",
            (WIDTH - RIGHT + LEFT) / 2.0,
            HEIGHT - 15.0
        );
        for step in 0..=5 {
            let value = peak * f64::from(step) / 5.0;
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}</text>",
                LEFT - 6.0,
                y(value) + 4.0,
                value
            );
        }
        let _ = writeln!(
            out,
            "<text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\">KiB per million guest instructions</text>",
            (HEIGHT - BOTTOM + TOP) / 2.0
        );
        // Copy limits.
        for copies in [4.0, 3.0, 2.0] {
            let value = memcpy / copies;
            let _ = writeln!(
                out,
                "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"gray\" stroke-dasharray=\"5,4\"/><text x=\"{2}\" y=\"{3:.1}\" fill=\"gray\">limit, {copies} copies</text>",
                y(value),
                WIDTH - RIGHT,
                WIDTH - RIGHT + 6.0,
                y(value) + 4.0
            );
        }
        for (index, mechanism) in MECHANISMS.iter().enumerate() {
            let mut points: Vec<&Transfer> = self
                .transfers
                .iter()
                .filter(|t| t.mechanism == *mechanism)
                .collect();
            if points.is_empty() {
                continue;
            }
            points.sort_by_key(|t| t.bytes);
            let path: Vec<String> = points
                .iter()
                .map(|t| format!("{:.1},{:.1}", x(t.bytes), y(throughput(t))))
                .collect();
            let color = COLORS[index % COLORS.len()];
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
            // Legend in the top-left corner of the plot, where small sizes keep
            // every line low.
            let legend_y = TOP + 14.0 + index as f64 * 17.0;
            let _ = writeln!(
                out,
                "<line x1=\"{0}\" y1=\"{legend_y}\" x2=\"{1}\" y2=\"{legend_y}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{2}\" y=\"{3}\">{mechanism}</text>",
                LEFT + 14.0,
                LEFT + 34.0,
                LEFT + 40.0,
                legend_y + 4.0
            );
        }
        if let Some(linux) = &self.linux {
            // Linux's 1 MiB transfers, as black squares at 1 MiB.
            for (index, (mechanism, bytes, per_kib, _)) in linux.files.iter().enumerate() {
                let value = 1_000_000.0 / (*per_kib as f64).max(1.0);
                let (cx, cy) = (x(*bytes as u64), y(value));
                let _ = writeln!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"black\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">Linux {mechanism}</text>",
                    cx - 4.0,
                    cy - 4.0,
                    cx + 8.0,
                    cy + 4.0 + index as f64 * 12.0
                );
            }
        }
        out.push_str("</svg>\n");
        out
    }
}

/// Step sizes of the 1 MiB chunk sweep.
pub const CHUNKS: [u64; 4] = [4096, 16384, 65536, 262144];

/// 4096 -> "4 KiB", 1048576 -> "1 MiB".
pub fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
KIPC-FOOTPRINT kernel=1960000 minimal=15000
BENCH memcpy bytes=8388608 instructions=1048576
BENCH copy bytes=1048576 movsb=1048580 movsq=131076 loop=655400
BENCH syscall calls=1000 null=129000 pipe_pairs=1366000
BENCH latency mechanism=pipe size=64 round_trips=200 instructions=900000
EXPERIMENT mechanism=pipe bytes=1048576 user_to_kernel=2097152 kernel_to_user=2097152 kernel_to_kernel=0 user_to_user=0 copy_operations=1024 pages_mapped=0 pages_loaned=0 syscalls=1163 context_switches=129 tsc=1024000 verified=yes
EXPERIMENT mechanism=loan bytes=4194304 user_to_kernel=0 kernel_to_user=0 kernel_to_kernel=0 user_to_user=0 copy_operations=0 pages_mapped=2048 pages_loaned=1024 syscalls=157 context_switches=5 tsc=512000 verified=no
";

    #[test]
    fn parses_every_kind_of_line() {
        let results = Results::parse(LOG).unwrap();
        assert_eq!(results.memcpy_per_kib(), 128.0);
        assert_eq!(results.syscalls["null"], 129000);
        assert_eq!(results.latency[0].per_round_trip(), 4500.0);
        assert_eq!(results.transfers.len(), 2);
        assert!(results.transfers[0].verified && !results.transfers[1].verified);
        assert_eq!(results.footprint, Some((1960000, 15000)));
        let methods: Vec<(&str, u64)> = results
            .copy_methods
            .iter()
            .map(|(name, per_kib)| (name.as_str(), per_kib.round() as u64))
            .collect();
        assert_eq!(
            methods,
            [
                ("rep movsq", 128),
                ("rep movsb", 1024),
                ("8-byte loop", 640)
            ]
        );
        assert!(results.table().contains(
            "copy methods, instructions per KiB: rep movsq 128, rep movsb 1024, 8-byte loop 640"
        ));
        assert!(results.table().starts_with(
            "kipc footprint: the demo kernel's Ipc 1960000 bytes (1914 KiB); kipc::MinimalIpc 15000 bytes (14.6 KiB)"
        ));
    }

    #[test]
    fn pipe_sweep_rows_come_from_each_boot() {
        let small = Results::parse(LOG).unwrap();
        let mut large = small.clone();
        large.latency[0].instructions = 800_000;
        large.transfers[0].instructions = 900_000;
        let table = pipe_sweep_table(&[(4096, small), (65536, large)]);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows.len(), 2, "{table}");
        // Capacity, kipc's size, the 64 B round trip, then the 1 MiB file in
        // 4 KiB chunks (per KiB and share of the copy limit); no 4 KiB trip
        // and no larger chunks in this log.
        assert!(
            rows[0].starts_with("  4 KiB       1914 KiB       4500          -       1000 (51%)"),
            "{table}"
        );
        assert!(
            rows[1].starts_with("  64 KiB      1914 KiB       4000          -        879 (58%)"),
            "{table}"
        );
        assert!(rows[0].ends_with(" -"), "{table}");
    }

    #[test]
    fn ledger_arithmetic() {
        let results = Results::parse(LOG).unwrap();
        let pipe = &results.transfers[0];
        // 4 MiB copied for a 1 MiB file: four copies per byte.
        assert_eq!(pipe.copies_per_byte(), 4.0);
        assert_eq!(pipe.instructions_per_kib(), 1000.0);
        // Limit: 4 copies x 128 instructions per KiB = 512; 512 / 1000.
        assert_eq!(results.limit_per_kib(pipe), 512.0);
        assert_eq!(results.ratio_to_limit(pipe), Some(0.512));
        let loan = &results.transfers[1];
        assert_eq!(loan.copies_per_byte(), 0.0);
        assert_eq!(results.ratio_to_limit(loan), None);
        // 512000 instructions for 4096 KiB = 125 per KiB, vs 128 for one copy.
        assert!((results.relative_to_one_copy(loan) - 125.0 / 128.0).abs() < 1e-9);
    }

    #[test]
    fn missing_benchmark_is_an_error() {
        assert!(Results::parse("KIPC-RESULT: PASS bench\n").is_err());
        assert!(Results::parse("BENCH memcpy bytes=x instructions=1\n").is_err());
    }

    #[test]
    fn outputs_mention_every_measured_mechanism() {
        let results = Results::parse(LOG).unwrap();
        let json = results.json();
        assert!(
            json.contains("\"ratio_to_limit\": 0.5120")
                && json.contains("\"ratio_to_limit\": null")
        );
        let svg = results.svg();
        assert!(
            svg.starts_with("<svg")
                && svg.contains(">pipe</text>")
                && svg.contains("limit, 4 copies")
        );
        let table = results.table();
        assert!(table.contains("NOT VERIFIED: loan at 4 MiB"), "{table}");
    }
}

/// One `BENCH breakdown` line: a measurement split by the kernel's phases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// `null`, `mailbox` or `pipe`.
    pub mechanism: String,
    /// Calls (null) or round trips measured.
    pub rounds: u64,
    /// Guest instructions in all, seen from user space.
    pub total: u64,
    /// The kernel's phase totals (see the kernel's `processes/breakdown.rs`).
    pub dispatch: u64,
    /// Inside kipc (copies and wake-ups included).
    pub kipc: u64,
    /// User-memory copies.
    pub copy: u64,
    /// Wake-ups.
    pub wake: u64,
    /// Scheduler (switch included).
    pub scheduler: u64,
    /// Context switches.
    pub switch: u64,
    /// The kernel's own copies (file system).
    pub host_copy: u64,
    /// System calls made.
    pub syscalls: u64,
}

/// The phases of a round trip, per round trip, in the order printed.
pub const PHASE_NAMES: [&str; 9] = [
    "entry + exit",
    "decode + validate",
    "kipc",
    "copy (kipc)",
    "copy (file system)",
    "wake",
    "scheduler",
    "context switch",
    "user code",
];

/// Reads the `BENCH breakdown` lines of a `bench only=breakdown` boot.
pub fn parse_breakdown(serial: &str) -> Result<Vec<Split>, String> {
    let mut splits = Vec::new();
    for line in serial.lines() {
        let line = line.trim();
        let (rest, file) = if let Some(rest) = line.strip_prefix("BENCH breakdown ") {
            (rest, false)
        } else if let Some(rest) = line.strip_prefix("EXPERIMENT-PHASES ") {
            (rest, true)
        } else {
            continue;
        };
        let fields = fields(rest);
        let mechanism = fields.get("mechanism").unwrap_or(&"?").to_string();
        splits.push(Split {
            mechanism: if file {
                format!("{mechanism}@{}", human(number(&fields, "chunk")?))
            } else {
                mechanism
            },
            // For a file: phases per KiB.
            rounds: if file {
                number(&fields, "bytes")? / 1024
            } else {
                number(&fields, "rounds")?
            },
            total: number(&fields, "total")?,
            dispatch: number(&fields, "dispatch")?,
            kipc: number(&fields, "kipc")?,
            copy: number(&fields, "copy")?,
            wake: number(&fields, "wake")?,
            scheduler: number(&fields, "scheduler")?,
            switch: number(&fields, "switch")?,
            host_copy: number(&fields, "host_copy").unwrap_or(0),
            syscalls: number(&fields, "syscalls")?,
        });
    }
    if !splits.iter().any(|split| split.mechanism == "null") {
        return Err("no `BENCH breakdown mechanism=null` line: the breakdown did not run".into());
    }
    Ok(splits)
}

/// Per round trip, in [`PHASE_NAMES`] order; entry and exit come from the
/// null call (its total less its dispatcher, per call).
pub fn phases(split: &Split, null: &Split) -> [f64; 9] {
    let per = |value: u64| value as f64 / split.rounds.max(1) as f64;
    let entry_exit_per_call =
        (null.total as f64 - null.dispatch as f64) / null.rounds.max(1) as f64;
    let entry_exit = entry_exit_per_call * per(split.syscalls);
    let kipc_own = per(split.kipc) - per(split.copy) - per(split.wake);
    let decode =
        per(split.dispatch) - per(split.kipc) - per(split.scheduler) - per(split.host_copy);
    let scheduler = per(split.scheduler) - per(split.switch);
    let user = per(split.total) - per(split.dispatch) - entry_exit;
    [
        entry_exit,
        decode,
        kipc_own,
        per(split.copy),
        per(split.host_copy),
        per(split.wake),
        scheduler,
        per(split.switch),
        user,
    ]
}

/// `bench --pipe-sweep`'s table: one row per pipe capacity, each from its own
/// kernel build and boot (`rows` as (capacity in bytes, that boot's results)).
pub fn pipe_sweep_table(rows: &[(usize, Results)]) -> String {
    let mut out = String::from(
        "pipe capacity against cost, one kernel build per capacity (guest instructions; files: 1 MiB by pipe, per KiB, share of the copy limit):\n",
    );
    let _ = write!(
        out,
        "  {:<9} {:>10} {:>10} {:>10}",
        "capacity", "kipc size", "64 B trip", "4 KiB trip"
    );
    for chunk in CHUNKS {
        let _ = write!(out, " {:>16}", format!("{} chunks", human(chunk)));
    }
    let _ = writeln!(out);
    for (capacity, results) in rows {
        let footprint = results.footprint.map_or("-".to_string(), |(kernel, _)| {
            format!("{} KiB", kernel / 1024)
        });
        let trip = |size| {
            results
                .round_trip("pipe", size)
                .map_or("-".to_string(), |value| format!("{value:.0}"))
        };
        let _ = write!(
            out,
            "  {:<9} {:>10} {:>10} {:>10}",
            human(*capacity as u64),
            footprint,
            trip(64),
            trip(4096)
        );
        for chunk in CHUNKS {
            let cell = results
                .pipe_file(chunk)
                .map_or("-".to_string(), |(per_kib, share)| {
                    format!("{per_kib:.0} ({:.0}%)", share * 100.0)
                });
            let _ = write!(out, " {cell:>16}");
        }
        let _ = writeln!(out);
    }
    out
}

/// The breakdown table.
pub fn breakdown_table(splits: &[Split]) -> String {
    let Some(null) = splits.iter().find(|split| split.mechanism == "null") else {
        return String::new();
    };
    let mut out = format!(
        "where a 64-byte round trip's guest instructions go (per round trip; the null call costs {:.0}, {:.0} of them entry and exit):\n",
        null.total as f64 / null.rounds.max(1) as f64,
        (null.total as f64 - null.dispatch as f64) / null.rounds.max(1) as f64
    );
    let (files, round_trips): (Vec<&Split>, Vec<&Split>) = splits
        .iter()
        .filter(|split| split.mechanism != "null")
        .partition(|split| split.mechanism.contains('@'));
    phase_columns(&mut out, &round_trips, null, 1);
    if !files.is_empty() {
        let _ = writeln!(
            out,
            "\nmoving 1 MiB, per KiB (\"decode + validate\" here also holds the file system's work besides its copies: page lookups, new frames):"
        );
        phase_columns(&mut out, &files, null, 2);
    }
    out
}

/// One column per split: its phases ([`PHASE_NAMES`]), total and system calls,
/// per round (the last with `decimals` decimals).
fn phase_columns(out: &mut String, columns: &[&Split], null: &Split, decimals: usize) {
    let per = |split: &Split, value: u64| value as f64 / split.rounds.max(1) as f64;
    let _ = write!(out, "  {:<20}", "phase");
    for column in columns {
        let _ = write!(out, " {:>12}", column.mechanism);
    }
    let _ = writeln!(out);
    let split_phases: Vec<[f64; 9]> = columns.iter().map(|column| phases(column, null)).collect();
    for (index, name) in PHASE_NAMES.iter().enumerate() {
        let _ = write!(out, "  {name:<20}");
        for phases in &split_phases {
            let _ = write!(out, " {:>12.0}", phases[index]);
        }
        let _ = writeln!(out);
    }
    let _ = write!(out, "  {:<20}", "total");
    for column in columns {
        let _ = write!(out, " {:>12.0}", per(column, column.total));
    }
    let _ = writeln!(out);
    let _ = write!(out, "  {:<20}", "system calls");
    for column in columns {
        let _ = write!(out, " {:>12.decimals$}", per(column, column.syscalls));
    }
    let _ = writeln!(out);
}
