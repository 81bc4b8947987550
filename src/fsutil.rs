//! Opening input files safely: only regular files (after following symlinks), never blocking on a FIFO, and reading
//! at most a stated number of bytes from the small JSON files. Every error names the file.

use crate::{Error, Result};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most `attn` reads from a `config.json`.
pub const CONFIG_CAP: u64 = 1 << 20;
/// The most `attn` reads from a `tokenizer.json`.
pub const TOKENIZER_CAP: u64 = 64 << 20;

/// Open `path` for reading if it is a regular file (symlinks followed). A FIFO, device, socket or directory is
/// refused with an error naming the file and what it is; the open itself never blocks (`O_NONBLOCK`, which has no
/// effect on regular files).
pub fn open_regular(path: &Path) -> Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::Input(format!(
            "{}: is {}, not a regular file",
            path.display(),
            kind(&meta.file_type())
        )));
    }
    Ok(file)
}

/// What a non-regular file is, for error messages.
fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Read a whole regular file of at most `cap` bytes; a larger file is refused without reading it all.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let too_big = |size: String| {
        Error::Input(format!(
            "{}: is {size} bytes; attn reads at most {cap} bytes from this file",
            path.display()
        ))
    };
    if len > cap {
        return Err(too_big(len.to_string()));
    }
    let mut buf = Vec::with_capacity(len as usize);
    // The length may change under us: never read more than cap + 1 bytes.
    file.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    if buf.len() as u64 > cap {
        return Err(too_big(format!("more than {cap}")));
    }
    Ok(buf)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_to_string_capped(path: &Path, cap: u64) -> Result<String> {
    String::from_utf8(read_capped(path, cap)?)
        .map_err(|e| Error::format(path.display().to_string(), format!("not UTF-8 text: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_directories_devices_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_regular(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory, not a regular file"), "{e}");
        let e = read_capped(Path::new("/dev/zero"), 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero: is a character device"), "{e}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_regular(&fifo).unwrap_err().to_string();
        assert!(e.contains("named pipe"), "{e}");
    }

    #[test]
    fn caps_what_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.json");
        std::fs::write(&p, vec![b' '; 100]).unwrap();
        assert_eq!(read_capped(&p, 100).unwrap().len(), 100);
        let e = read_capped(&p, 99).unwrap_err().to_string();
        assert!(
            e.contains("big.json: is 100 bytes") && e.contains("at most 99"),
            "{e}"
        );
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(read_to_string_capped(&link, 100).unwrap().len(), 100);
    }
}
