//! Reading the PVH `hvm_start_info` QEMU hands the kernel: the memory map, the
//! kernel command line and the boot modules (`-initrd`).
//!
//! Layout from Xen's public `arch-x86/hvm/start_info.h`; every address in it
//! is physical and read here through the direct map.

use crate::boot::phys_to_virt;

/// Magic value at the start of `hvm_start_info`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;

#[repr(C)]
#[derive(Clone, Copy)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ModuleEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct MemoryMapEntry {
    address: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// Type of usable RAM in the PVH memory map (same numbering as E820).
pub const MEMORY_RAM: u32 = 1;

/// One range of the physical memory map.
#[derive(Clone, Copy, Debug)]
pub struct MemoryRange {
    /// First physical address.
    pub start: u64,
    /// One past the last physical address.
    pub end: u64,
    /// E820 type; [`MEMORY_RAM`] is usable.
    pub kind: u32,
}

/// A boot module: physical location and size.
#[derive(Clone, Copy, Debug)]
pub struct Module {
    /// Physical address of the first byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

/// What the kernel keeps from the start info.
pub struct BootInfo {
    /// Memory map ranges (at most 32 kept).
    pub memory: heapless::Vec<MemoryRange, 32>,
    /// Kernel command line (`-append`), at most 512 bytes kept.
    pub cmdline: heapless::String<512>,
    /// Boot modules (`-initrd`), at most 4 kept.
    pub modules: heapless::Vec<Module, 4>,
    /// Physical ranges the start info itself lives in (kept off the allocator).
    pub reserved: heapless::Vec<(u64, u64), 8>,
}

/// Why the start info could not be used.
#[derive(Debug)]
pub enum BootInfoError {
    /// The magic number was wrong: not booted through PVH.
    BadMagic {
        /// The value found instead of [`START_INFO_MAGIC`].
        found: u32,
    },
    /// Version 0 start info has no memory map.
    NoMemoryMap,
}

fn read<T: Copy>(physical: u64) -> T {
    // SAFETY: the start info and the tables it points to are in RAM below
    // 4 GiB, which the boot page tables map in the direct map; QEMU wrote them
    // before starting us and nothing else writes them. `read_unaligned`
    // makes no alignment assumption.
    unsafe { core::ptr::read_unaligned(phys_to_virt(physical) as *const T) }
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, out: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootInfoError::BadMagic { found } => write!(
                out,
                "start-info magic is {found:#x}, not {START_INFO_MAGIC:#x}: the kernel was not booted through PVH"
            ),
            BootInfoError::NoMemoryMap => {
                write!(
                    out,
                    "start info version 0 has no memory map (QEMU 4.0 or newer needed)"
                )
            }
        }
    }
}

/// Parses the start info at physical address `start_info`.
pub fn parse(start_info: u64) -> Result<BootInfo, BootInfoError> {
    let info: StartInfo = read(start_info);
    if info.magic != START_INFO_MAGIC {
        return Err(BootInfoError::BadMagic { found: info.magic });
    }
    if info.version < 1 || info.memmap_paddr == 0 {
        return Err(BootInfoError::NoMemoryMap);
    }
    let mut boot = BootInfo {
        memory: heapless::Vec::new(),
        cmdline: heapless::String::new(),
        modules: heapless::Vec::new(),
        reserved: heapless::Vec::new(),
    };
    let _ = boot
        .reserved
        .push((start_info, start_info + size_of::<StartInfo>() as u64));
    let map_bytes = info.memmap_entries as u64 * size_of::<MemoryMapEntry>() as u64;
    let _ = boot
        .reserved
        .push((info.memmap_paddr, info.memmap_paddr + map_bytes));
    for index in 0..info.memmap_entries as u64 {
        let entry: MemoryMapEntry =
            read(info.memmap_paddr + index * size_of::<MemoryMapEntry>() as u64);
        let _ = boot.memory.push(MemoryRange {
            start: entry.address,
            end: entry.address.saturating_add(entry.size),
            kind: entry.kind,
        });
    }
    if info.cmdline_paddr != 0 {
        let mut length = 0u64;
        while length < 512 {
            let byte: u8 = read(info.cmdline_paddr + length);
            if byte == 0 {
                break;
            }
            let _ = boot
                .cmdline
                .push(if byte.is_ascii() { byte as char } else { '?' });
            length += 1;
        }
        let _ = boot
            .reserved
            .push((info.cmdline_paddr, info.cmdline_paddr + length + 1));
    }
    for index in 0..info.nr_modules as u64 {
        let entry: ModuleEntry = read(info.modlist_paddr + index * size_of::<ModuleEntry>() as u64);
        let _ = boot.modules.push(Module {
            start: entry.paddr,
            size: entry.size,
        });
    }
    if info.nr_modules > 0 {
        let bytes = info.nr_modules as u64 * size_of::<ModuleEntry>() as u64;
        let _ = boot
            .reserved
            .push((info.modlist_paddr, info.modlist_paddr + bytes));
    }
    Ok(boot)
}

impl BootInfo {
    /// The value of `key=value` on the command line, if present.
    pub fn argument(&self, key: &str) -> Option<&str> {
        self.cmdline.split_ascii_whitespace().find_map(|word| {
            let (name, value) = word.split_once('=')?;
            (name == key).then_some(value)
        })
    }

    /// Usable RAM in bytes.
    pub fn usable_bytes(&self) -> u64 {
        self.memory
            .iter()
            .filter(|range| range.kind == MEMORY_RAM)
            .map(|range| range.end - range.start)
            .sum()
    }
}
