//! Committing a set of outputs as one (every file appears, or none changes), and the
//! record of this process's temp files and new folders, so that a signal handler can
//! take them away ([`remove_own_temps`]).
//!
//! The commit: every file is already complete under its temp name; existing files are
//! first moved aside (hidden `.NAME.halo-old.PID.N` names), then every temp is renamed
//! into place; if one rename fails, the new files are taken away and the old ones put
//! back. The record's lock is held throughout, so a signal arriving mid-commit waits for
//! a consistent directory before cleaning up.

use super::{IoError, PendingFile, TEMP_COUNTER};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

/// Temp files and folders this process created and has not committed or removed.
struct Record {
    temps: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

static RECORD: Mutex<Record> = Mutex::new(Record {
    temps: Vec::new(),
    dirs: Vec::new(),
});

fn record() -> MutexGuard<'static, Record> {
    RECORD.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn note_temp(path: &Path) {
    record().temps.push(path.to_path_buf());
}

pub(super) fn forget_temp(path: &Path) {
    let mut r = record();
    if let Some(i) = r.temps.iter().rposition(|p| p == path) {
        r.temps.swap_remove(i);
    }
}

/// Records a folder this run created, to be removed (when empty of anything but its
/// temps) should the run be interrupted; [`forget_dir`] once it holds committed files.
pub fn note_dir(path: &Path) {
    record().dirs.push(path.to_path_buf());
}

/// Takes a folder off the record of [`note_dir`]: it now holds committed files and stays.
pub fn forget_dir(path: &Path) {
    let mut r = record();
    r.dirs.retain(|p| p != path);
}

/// Removes every temp file and new folder of this process (for a signal handler, just
/// before it exits). Waits for a commit in progress to finish, and keeps the record
/// locked afterwards so that nothing is committed once the cleanup began.
pub fn remove_own_temps() -> usize {
    let mut r = record();
    let mut removed = 0;
    for t in r.temps.drain(..) {
        if fs::remove_file(&t).is_ok() {
            removed += 1;
        }
    }
    for d in r.dirs.drain(..).rev() {
        let _ = fs::remove_dir(&d);
    }
    // The process is about to exit: keep the lock so no commit can start.
    std::mem::forget(r);
    removed
}

/// Moves every pending file into place together: old files aside, new files in, old
/// files removed; on any failure the directory is as it was and the temps are gone.
/// Returns the final paths in the order given.
pub fn commit_all(files: Vec<PendingFile>) -> Result<Vec<PathBuf>, IoError> {
    let _lock = record();
    // 1. Move existing files aside.
    let mut aside: Vec<(usize, PathBuf)> = Vec::new();
    let mut failure: Option<IoError> = None;
    for (i, f) in files.iter().enumerate() {
        if fs::symlink_metadata(&f.path).is_err() {
            continue;
        }
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let backup =
            super::parent_dir(&f.path).join(format!(".{name}.halo-old.{}.{n}", std::process::id()));
        if let Err(e) = fs::rename(&f.path, &backup) {
            failure = Some(IoError::Write {
                path: f.path.clone(),
                source: e,
            });
            break;
        }
        aside.push((i, backup));
    }
    // 2. New files in.
    let mut placed = 0;
    if failure.is_none() {
        for f in &files {
            if let Err(e) = fs::rename(&f.temp, &f.path) {
                failure = Some(IoError::Write {
                    path: f.path.clone(),
                    source: e,
                });
                break;
            }
            placed += 1;
        }
    }
    if let Some(e) = failure {
        // Roll back: new files out, old files back; the temps go with `files`' drop.
        for f in &files[..placed] {
            let _ = fs::remove_file(&f.path);
        }
        for (i, backup) in &aside {
            let _ = fs::rename(backup, &files[*i].path);
        }
        drop(_lock);
        drop(files);
        return Err(e);
    }
    // 3. Old files away.
    for (_, backup) in &aside {
        let _ = fs::remove_file(backup);
    }
    let mut paths = Vec::with_capacity(files.len());
    let mut temps = Vec::with_capacity(files.len());
    for mut f in files {
        f.done = true;
        temps.push(std::mem::take(&mut f.temp));
        paths.push(f.path.clone());
    }
    drop(_lock);
    for t in temps {
        forget_temp(&t);
    }
    Ok(paths)
}
