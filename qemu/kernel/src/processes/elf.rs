//! A strict ELF64 reader for user programs: just enough to load them, and
//! suspicious of everything (the archive is input like any other).
//!
//! Accepted: little-endian x86_64 `ET_EXEC` files whose `PT_LOAD` segments lie
//! in the lower half, are page-aligned in the same way in file and memory,
//! have `filesz <= memsz`, stay inside the file, and are never both writable
//! and executable (W^X).

use crate::memory::address_space::{USER_END, USER_START};

const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;

/// Why a program was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not an ELF64 little-endian x86_64 executable.
    NotAnExecutable,
    /// Header or program table outside the file.
    Truncated,
    /// A segment leaves the user half or wraps.
    BadAddress,
    /// A segment is writable and executable.
    WritableAndExecutable,
    /// `filesz > memsz`, misaligned offset, or data outside the file.
    BadSegment,
    /// Too many segments (more than [`MAX_SEGMENTS`]).
    TooManySegments,
}

/// Most `PT_LOAD` segments accepted.
pub const MAX_SEGMENTS: usize = 8;

/// One loadable segment.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    /// Virtual address of the first byte.
    pub address: u64,
    /// Bytes in memory (the tail past `file_bytes` is zero).
    pub memory_bytes: u64,
    /// Offset of the data in the file.
    pub file_offset: u64,
    /// Bytes of data in the file.
    pub file_bytes: u64,
    /// Writable (never together with `executable`).
    pub writable: bool,
    /// Executable.
    pub executable: bool,
}

/// A validated program.
pub struct Program<'a> {
    /// The whole file.
    pub file: &'a [u8],
    /// Entry point.
    pub entry: u64,
    /// Its loadable segments.
    pub segments: heapless::Vec<Segment, MAX_SEGMENTS>,
}

fn u16_at(bytes: &[u8], offset: usize) -> Result<u16, ElfError> {
    let raw = bytes.get(offset..offset + 2).ok_or(ElfError::Truncated)?;
    Ok(u16::from_le_bytes([raw[0], raw[1]]))
}

fn u32_at(bytes: &[u8], offset: usize) -> Result<u32, ElfError> {
    let raw = bytes.get(offset..offset + 4).ok_or(ElfError::Truncated)?;
    Ok(u32::from_le_bytes(
        raw.try_into().map_err(|_| ElfError::Truncated)?,
    ))
}

fn u64_at(bytes: &[u8], offset: usize) -> Result<u64, ElfError> {
    let raw = bytes.get(offset..offset + 8).ok_or(ElfError::Truncated)?;
    Ok(u64::from_le_bytes(
        raw.try_into().map_err(|_| ElfError::Truncated)?,
    ))
}

/// Parses and validates `file`.
pub fn parse(file: &[u8]) -> Result<Program<'_>, ElfError> {
    if !file.starts_with(b"\x7fELF\x02\x01\x01") {
        return Err(ElfError::NotAnExecutable);
    }
    let kind = u16_at(file, 16)?;
    let machine = u16_at(file, 18)?;
    if kind != 2 || machine != 0x3e {
        return Err(ElfError::NotAnExecutable);
    }
    let entry = u64_at(file, 24)?;
    let table = u64_at(file, 32)? as usize;
    let entry_size = usize::from(u16_at(file, 54)?);
    let count = usize::from(u16_at(file, 56)?);
    if entry_size < 56 {
        return Err(ElfError::Truncated);
    }
    let mut segments = heapless::Vec::new();
    for index in 0..count {
        let header = table
            .checked_add(index.checked_mul(entry_size).ok_or(ElfError::Truncated)?)
            .ok_or(ElfError::Truncated)?;
        if u32_at(file, header)? != PT_LOAD {
            continue;
        }
        let flags = u32_at(file, header + 4)?;
        let segment = Segment {
            file_offset: u64_at(file, header + 8)?,
            address: u64_at(file, header + 16)?,
            file_bytes: u64_at(file, header + 32)?,
            memory_bytes: u64_at(file, header + 40)?,
            writable: flags & PF_W != 0,
            executable: flags & PF_X != 0,
        };
        if segment.writable && segment.executable {
            return Err(ElfError::WritableAndExecutable);
        }
        let end = segment
            .address
            .checked_add(segment.memory_bytes)
            .ok_or(ElfError::BadAddress)?;
        if segment.address < USER_START || end > USER_END {
            return Err(ElfError::BadAddress);
        }
        let file_end = segment
            .file_offset
            .checked_add(segment.file_bytes)
            .ok_or(ElfError::BadSegment)?;
        if segment.file_bytes > segment.memory_bytes
            || file_end > file.len() as u64
            || segment.file_offset % 4096 != segment.address % 4096
        {
            return Err(ElfError::BadSegment);
        }
        segments
            .push(segment)
            .map_err(|_| ElfError::TooManySegments)?;
    }
    let entry_is_executable = segments.iter().any(|segment: &Segment| {
        segment.executable
            && entry >= segment.address
            && entry < segment.address + segment.memory_bytes
    });
    if !entry_is_executable {
        return Err(ElfError::BadAddress);
    }
    Ok(Program {
        file,
        entry,
        segments,
    })
}
