//! Packs user programs into a POSIX ustar archive, the boot module format the
//! kernel's `initrd.rs` reads.

const BLOCK: usize = 512;

fn octal_field(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

/// Builds a ustar archive holding `files` (name, contents) as regular files.
pub fn ustar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut archive = Vec::new();
    for (name, data) in files {
        assert!(name.len() < 100, "archive names are limited to 99 bytes");
        let mut header = [0u8; BLOCK];
        header[..name.len()].copy_from_slice(name.as_bytes());
        octal_field(&mut header[100..108], 0o755); // mode
        octal_field(&mut header[108..116], 0); // uid
        octal_field(&mut header[116..124], 0); // gid
        octal_field(&mut header[124..136], data.len() as u64);
        octal_field(&mut header[136..148], 0); // mtime: fixed, so builds are reproducible
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].fill(b' ');
        let checksum: u64 = header.iter().map(|&byte| u64::from(byte)).sum();
        let text = format!("{checksum:06o}\0 ");
        header[148..156].copy_from_slice(text.as_bytes());
        archive.extend_from_slice(&header);
        archive.extend_from_slice(data);
        archive.resize(archive.len().next_multiple_of(BLOCK), 0);
    }
    archive.resize(archive.len() + 2 * BLOCK, 0);
    archive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_reads_it_back() {
        let files = vec![
            ("init".to_string(), b"\x7fELF hello".to_vec()),
            ("b".to_string(), vec![7u8; 700]),
        ];
        let archive = ustar(&files);
        assert_eq!(archive.len() % BLOCK, 0);
        let directory = std::env::temp_dir().join(format!("kipc-ustar-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("a.tar");
        std::fs::write(&path, &archive).unwrap();
        let listing = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&path)
            .output();
        if let Ok(listing) = listing {
            let text = String::from_utf8_lossy(&listing.stdout);
            assert!(
                listing.status.success(),
                "tar rejected the archive: {}",
                String::from_utf8_lossy(&listing.stderr)
            );
            assert!(text.contains("init") && text.contains(" 700 "), "{text}");
        }
        std::fs::remove_dir_all(directory).unwrap();
    }
}
