//! Read-only memory maps of sealed, immutable segment files.
//!
//! The only module with `unsafe` code. Invariant: only sealed segments are mapped; the store
//! never writes, truncates or renames over a sealed segment while it is listed in the
//! MANIFEST, and retention deletes it by unlinking (existing maps stay valid on Linux).

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A read-only map of a whole file (an empty file maps to an empty slice).
#[derive(Debug)]
pub(crate) struct ReadOnlyMap {
    map: Option<memmap2::Mmap>,
}

impl ReadOnlyMap {
    /// Maps the file at `path` read-only.
    ///
    /// # Errors
    /// The I/O error from opening or mapping the file.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        // Not following a symlink: a sealed segment is a regular file inside the store.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Self { map: None });
        }
        #[expect(
            unsafe_code,
            reason = "memmap2 maps are unsafe by API; see SAFETY below"
        )]
        // SAFETY: sealed segments are immutable: ctrace never modifies a file after sealing it
        // and only ever replaces it by unlink + new name, so the mapped bytes do not change
        // under the map. Another program truncating the file would be outside ctrace's contract.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Self { map: Some(map) })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}
