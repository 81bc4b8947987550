//! All-or-nothing dumps. A dump claims its target directory with an exclusive lock file (`O_EXCL`), writes every file
//! into a hidden staging directory inside it, checks every target name for conflicts before any rename, then moves
//! the files into place. Files a previous dump wrote (its manifest, the `files` list of its `meta.json`) are moved
//! aside first when `force` is set and put back if anything fails, so a failed dump leaves nothing new and touches
//! nothing old. Files `attn` did not write are never touched. A signal handler in the binary calls
//! [`abort_all`] to remove the staging areas of dumps in flight; stale staging directories and locks of dead
//! processes are removed by the next dump into the same folder.

use crate::{Error, Result};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// The lock file a dump holds in its target directory while it runs.
pub const LOCK_NAME: &str = ".attn-dump.lock";
/// The prefix of staging directories: `.attn-staging-<pid>-<nanos>`.
pub const STAGING_PREFIX: &str = ".attn-staging-";
/// The manifest file of dumps (its `files` field lists what the dump wrote).
pub const MANIFEST: &str = "meta.json";

/// What a signal handler must remove for one dump in flight.
#[derive(Debug, Clone)]
struct Active {
    id: u64,
    stage: PathBuf,
    lock: PathBuf,
    created_out: Option<PathBuf>,
}

static ACTIVE: Mutex<Vec<Active>> = Mutex::new(Vec::new());
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn active() -> std::sync::MutexGuard<'static, Vec<Active>> {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remove the staging directories and locks of every dump in flight (for signal handlers; the process must exit
/// right after). Returns how many dumps were aborted.
pub fn abort_all() -> usize {
    let list = active().clone();
    for a in &list {
        // A writer may still add a file while we remove: retry a few times.
        for _ in 0..20 {
            match fs::remove_dir_all(&a.stage) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => continue,
                _ => break,
            }
        }
        let _ = fs::remove_file(&a.lock);
        if let Some(out) = &a.created_out {
            let _ = fs::remove_dir(out);
        }
    }
    list.len()
}

/// Is process `pid` alive? (`kill(pid, 0)`; EPERM means it exists.)
fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The pid in a staging directory's name, `.attn-staging-<pid>-<nanos>`.
fn staging_pid(name: &str) -> Option<i32> {
    name.strip_prefix(STAGING_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Remove staging directories in `out` whose process is dead. Returns how many were removed.
pub fn remove_stale_staging(out: &Path) -> usize {
    let Ok(entries) = fs::read_dir(out) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = staging_pid(&name)
            && !pid_alive(pid)
            && e.file_type().is_ok_and(|t| t.is_dir())
            && fs::remove_dir_all(e.path()).is_ok()
        {
            n += 1;
        }
    }
    n
}

/// Is `name` a plain relative path (no `..`, no root) a manifest may name?
fn safe_relative(name: &str) -> bool {
    let p = Path::new(name);
    !name.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// The files a previous dump in `out` wrote, from its manifest; empty when there is none or it is unreadable.
pub fn previous_manifest(out: &Path) -> Vec<String> {
    let Ok(bytes) = crate::fsutil::read_capped(&out.join(MANIFEST), crate::fsutil::CONFIG_CAP * 64)
    else {
        return vec![];
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return vec![];
    };
    v.get("files")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .filter(|s| safe_relative(s))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// One whole dump into `out`: claim it, check that `names` (the files it will write) are free, let `write`
/// stage the files and return the manifest's fields, add the `files` list (what was staged, and the manifest) and
/// write it as [`MANIFEST`], then move everything into place.
pub fn write_dump(
    out: &Path,
    force: bool,
    names: &[String],
    write: impl FnOnce(&mut Staged) -> Result<serde_json::Map<String, serde_json::Value>>,
) -> Result<Vec<PathBuf>> {
    let mut st = Staged::new(out, force)?;
    st.check_free(names)?;
    let mut meta = write(&mut st)?;
    let files: Vec<&str> = st
        .files()
        .iter()
        .map(String::as_str)
        .chain([MANIFEST])
        .collect();
    meta.insert("files".into(), serde_json::json!(files));
    st.write_json(MANIFEST, &serde_json::Value::Object(meta))?;
    st.commit()
}

/// A set of files written into a hidden staging directory, then moved into `out` together.
pub struct Staged {
    id: u64,
    out: PathBuf,
    stage: PathBuf,
    lock: PathBuf,
    created_out: bool,
    files: Vec<String>,
    force: bool,
}

impl Staged {
    /// Claim `out` (a directory, created if missing and its parent exists) for one dump.
    pub fn new(out: &Path, force: bool) -> Result<Self> {
        let mut created_out = false;
        match fs::metadata(out) {
            Ok(m) if !m.is_dir() => {
                return Err(Error::Input(format!(
                    "{}: exists and is not a directory",
                    out.display()
                )));
            }
            Ok(_) => {}
            Err(_) => {
                let parent = match out.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                if !parent.is_dir() {
                    return Err(Error::Input(format!(
                        "{}: cannot create the output directory: {} does not exist or is not a directory",
                        out.display(),
                        parent.display()
                    )));
                }
                match fs::create_dir(out) {
                    Ok(()) => created_out = true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && out.is_dir() => {}
                    Err(e) => return Err(Error::io(out, e)),
                }
            }
        }
        let lock = out.join(LOCK_NAME);
        let fail = |e: Error| {
            if created_out {
                let _ = fs::remove_dir(out);
            }
            Err(e)
        };
        if let Err(e) = claim(&lock, out) {
            return fail(e);
        }
        remove_stale_staging(out);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let stage = out.join(format!("{STAGING_PREFIX}{}-{nanos}", std::process::id()));
        if let Err(e) = fs::create_dir(&stage) {
            let _ = fs::remove_file(&lock);
            return fail(Error::io(&stage, e));
        }
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        active().push(Active {
            id,
            stage: stage.clone(),
            lock: lock.clone(),
            created_out: created_out.then(|| out.to_path_buf()),
        });
        Ok(Staged {
            id,
            out: out.to_path_buf(),
            stage,
            lock,
            created_out,
            files: vec![],
            force,
        })
    }

    /// The target directory.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Check that every one of `names` can be put into `out`: nothing in the way (a directory where a file goes, a
    /// file where a directory goes), and no existing file unless `force`.
    pub fn check_free(&self, names: &[String]) -> Result<()> {
        for n in names {
            let mut prefix = self.out.clone();
            let comps: Vec<_> = Path::new(n).components().collect();
            for (i, c) in comps.iter().enumerate() {
                prefix.push(c);
                let last = i + 1 == comps.len();
                let Ok(m) = fs::symlink_metadata(&prefix) else {
                    break;
                };
                if !last && !m.is_dir() {
                    return Err(Error::Input(format!(
                        "{}: exists and is not a directory",
                        prefix.display()
                    )));
                }
                if last {
                    if m.is_dir() {
                        return Err(Error::Input(format!(
                            "{}: exists and is a directory",
                            prefix.display()
                        )));
                    }
                    if !self.force {
                        return Err(Error::Exists { path: prefix });
                    }
                }
            }
        }
        Ok(())
    }

    /// Write one file (relative name, may contain one sub-directory) through a closure.
    pub fn write(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut BufWriter<fs::File>) -> std::io::Result<()>,
    ) -> Result<()> {
        let path = self.stage.join(name);
        if let Some(dir) = path.parent()
            && dir != self.stage
        {
            // `create_dir`, not `create_dir_all`: a staging area removed by a signal handler is never re-created.
            match fs::create_dir(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::io(dir, e));
                }
                _ => {}
            }
        }
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(self.out.join(name), e))?;
        let mut w = BufWriter::new(file);
        f(&mut w)
            .and_then(|_| w.flush())
            .and_then(|_| w.get_ref().sync_all())
            .map_err(|e| Error::io(self.out.join(name), e))?;
        self.files.push(name.to_string());
        Ok(())
    }

    /// Write `doc` as pretty JSON with a trailing newline.
    pub fn write_json(&mut self, name: &str, doc: &serde_json::Value) -> Result<()> {
        self.write(name, |w| {
            serde_json::to_writer_pretty(&mut *w, doc)?;
            w.write_all(b"\n")
        })
    }

    /// The names written so far (the manifest), in order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Move every staged file into place, all or nothing. With `force`, first move aside every file of the previous
    /// dump's manifest and every existing file of the same name; on failure, everything is put back.
    pub fn commit(self) -> Result<Vec<PathBuf>> {
        self.check_free(&self.files)?;
        let old: Vec<String> = if self.force {
            let mut v = previous_manifest(&self.out);
            v.extend(self.files.iter().cloned());
            v.sort();
            v.dedup();
            v.retain(|n| fs::symlink_metadata(self.out.join(n)).is_ok_and(|m| !m.is_dir()));
            v
        } else {
            vec![]
        };
        let aside = self.stage.join(".old");
        let mut moved_old: Vec<&String> = vec![];
        let mut moved_new: Vec<&String> = vec![];
        let result = (|| -> Result<()> {
            for n in &old {
                move_file(&self.out.join(n), &aside.join(n))?;
                moved_old.push(n);
            }
            for n in &self.files {
                move_file(&self.stage.join(n), &self.out.join(n))?;
                moved_new.push(n);
            }
            Ok(())
        })();
        if let Err(e) = result {
            for n in moved_new.iter().rev() {
                let _ = move_file(&self.out.join(n), &self.stage.join(n));
            }
            for n in moved_old.iter().rev() {
                let _ = move_file(&aside.join(n), &self.out.join(n));
            }
            return Err(e);
        }
        // Sub-directories the old dump used and the new one does not, now empty.
        for n in &old {
            if let Some(parent) = Path::new(n).parent()
                && !parent.as_os_str().is_empty()
            {
                let _ = fs::remove_dir(self.out.join(parent));
            }
        }
        Ok(self.files.iter().map(|n| self.out.join(n)).collect())
    }
}

/// Rename `from` to `to`, creating `to`'s parent directory when missing.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent()
        && !dir.is_dir()
    {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    fs::rename(from, to).map_err(|e| Error::io(to, e))
}

/// Create the lock file with `O_EXCL`; a lock left by a dead process is removed once and the claim retried.
fn claim(lock: &Path, out: &Path) -> Result<()> {
    for attempt in 0..2 {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(mut f) => {
                let _ = writeln!(f, "{}", std::process::id());
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let pid: i32 = fs::read_to_string(lock)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                if attempt == 0 && pid > 0 && !pid_alive(pid) {
                    let _ = fs::remove_file(lock);
                    continue;
                }
                return Err(Error::Input(format!(
                    "{}: already exists: another attn dump (pid {pid}) is writing into {}",
                    lock.display(),
                    out.display()
                )));
            }
            Err(e) => return Err(Error::io(lock, e)),
        }
    }
    Err(Error::Input(format!(
        "{}: cannot claim the output directory",
        out.display()
    )))
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.stage);
        let _ = fs::remove_file(&self.lock);
        if self.created_out {
            // Only removes the directory if nothing was moved into it (a failed dump).
            let _ = fs::remove_dir(&self.out);
        }
        active().retain(|a| a.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interleaving that let two racing dumps both win (both checked the names before either renamed): the
    /// second claim of a directory fails at once, whatever the timing.
    #[test]
    fn a_claimed_directory_cannot_be_claimed_twice() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("D");
        let mut a = Staged::new(&d, false).unwrap();
        let e = Staged::new(&d, false).err().unwrap().to_string();
        assert!(
            e.contains("already exists") && e.contains("another attn dump"),
            "{e}"
        );
        a.write("meta.json", |w| w.write_all(b"{}")).unwrap();
        a.commit().unwrap();
        // Released after the dump: the next one gets the claim, and finds the files.
        let b = Staged::new(&d, false).unwrap();
        let e = b
            .check_free(&["meta.json".to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("already exists"), "{e}");
        drop(b);
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "only meta.json is left"
        );
    }
}
