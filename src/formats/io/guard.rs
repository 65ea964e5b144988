//! Which files a command may touch: inputs are opened only when they are regular files
//! (without blocking, so a FIFO cannot hang a run) and read with a size cap; an output
//! that is one of the inputs (same canonical path, or same device and inode: a hard
//! link) is refused before anything is written.

use super::{IoError, open_error};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest session or layout text read (a session with a million keyframes is ~60 MB).
pub const MAX_TEXT_BYTES: u64 = 256 * 1024 * 1024;
/// Largest SOFA file read (the largest public HRTF sets are a few hundred MB).
pub const MAX_SOFA_BYTES: u64 = 512 * 1024 * 1024;

/// What a path that is not a regular file is, for the error message.
fn kind_name(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Opens an input for reading: never blocks (`O_NONBLOCK`, so opening a FIFO with no
/// writer returns at once), and refuses anything but a regular file.
pub fn open_input(path: &Path) -> Result<File, IoError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|e| open_error(path, e))?;
    if !meta.is_file() {
        return Err(IoError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_name(&meta),
        });
    }
    Ok(file)
}

/// Reads a whole regular file of at most `max_bytes`.
pub fn read_capped(path: &Path, max_bytes: u64) -> Result<Vec<u8>, IoError> {
    let file = open_input(path)?;
    let len = file.metadata().map_err(|e| open_error(path, e))?.len();
    let too_large = |size: u64| IoError::TooLarge {
        path: path.to_path_buf(),
        size,
        max: max_bytes,
    };
    if len > max_bytes {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| open_error(path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A file as the file system knows it: canonical path and (device, inode).
struct Identity {
    canonical: Option<PathBuf>,
    id: Option<(u64, u64)>,
}

fn identity(path: &Path) -> Identity {
    let canonical = std::fs::canonicalize(path).ok().or_else(|| {
        // Not there yet: the canonical directory and the name.
        let name = path.file_name()?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::canonicalize(dir).ok().map(|d| d.join(name))
    });
    #[cfg(unix)]
    let id = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    };
    #[cfg(not(unix))]
    let id = None;
    Identity { canonical, id }
}

/// Refuses when any output is one of the inputs (by canonical path or file identity), so
/// that a render, import or export never replaces a file it reads.
pub fn check_outputs(inputs: &[PathBuf], outputs: &[PathBuf]) -> Result<(), IoError> {
    let ins: Vec<(&PathBuf, Identity)> = inputs.iter().map(|p| (p, identity(p))).collect();
    for out in outputs {
        let o = identity(out);
        for (input, i) in &ins {
            let same_path = o.canonical.is_some() && o.canonical == i.canonical;
            let same_file = o.id.is_some() && o.id == i.id;
            if same_path || same_file {
                return Err(IoError::OutputIsInput {
                    output: out.clone(),
                    input: (*input).clone(),
                });
            }
        }
    }
    Ok(())
}
