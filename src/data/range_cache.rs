//! What [`super::dense_range`] found for a profiles file, kept between
//! runs. Whether a million profile ids are each integer of their range once
//! is known only by reading them all: 8 MB to decompress and check at every
//! `seg run`, about a fifth of the CPU time of a small segment. The answer
//! is kept in a small file of Seg's cache directory, under the file's
//! path, size, modification time and footer statistics; any of them
//! changing is a new key, and so a new check.
//!
//! A file modified less than [`SETTLED`] before it is checked is not
//! cached: a file system keeps modification times in ticks of a few
//! milliseconds, so a file rewritten within the same tick with the same
//! size and statistics would look unchanged (as Git does with its index).
//!
//! The directory is `SEG_CACHE_DIR`, else `$XDG_CACHE_HOME/seg`, else
//! `~/.cache/seg`; `SEG_CACHE_DIR=off` (or empty) turns the cache off.
//! Nothing here is ever an error: a cache that cannot be read or written
//! is a cache miss.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a file must be left unmodified before its answer is kept.
const SETTLED: Duration = Duration::from_secs(2);

/// The most answers kept; past it the oldest half goes.
const MAX_ENTRIES: usize = 512;

/// What identifies one version of a profiles file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    text: String,
    modified: SystemTime,
}

impl Key {
    /// The key of the file at `path` (a local path or an object-store URL)
    /// of `size` bytes, last modified at `modified`, whose footer says
    /// `summary` of its ids (row count, bounds, row groups).
    pub fn new(path: &Path, size: u64, modified: SystemTime, summary: &str) -> Key {
        let path = match super::remote::url_of(path) {
            Some(_) => path.to_path_buf(),
            None => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        };
        let nanos = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Key {
            text: format!("{}\t{size}\t{nanos}\t{summary}", path.display()),
            modified,
        }
    }

    fn file_name(&self) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.text.hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

/// The cache directory, unless the cache is off.
fn dir() -> Option<PathBuf> {
    let base = match std::env::var_os("SEG_CACHE_DIR") {
        Some(d) if d.is_empty() || d == "off" => return None,
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d).join("seg"),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/seg"),
        },
    };
    Some(base.join("profile-ranges"))
}

/// The answer kept for `key`: `Some(range)` when one is.
pub fn get(key: &Key) -> Option<Option<(i64, i64)>> {
    get_in(&dir()?, key)
}

/// Keeps `answer` for `key`, when the file has settled (see the module
/// documentation).
pub fn put(key: &Key, answer: Option<(i64, i64)>) {
    if let Some(dir) = dir() {
        put_in(&dir, key, answer);
    }
}

fn get_in(dir: &Path, key: &Key) -> Option<Option<(i64, i64)>> {
    let text = std::fs::read_to_string(dir.join(key.file_name())).ok()?;
    let (stored, answer) = text.split_once('\n')?;
    if stored != key.text {
        return None;
    }
    match answer.trim() {
        "none" => Some(None),
        range => {
            let (lo, hi) = range.split_once(' ')?;
            Some(Some((lo.parse().ok()?, hi.parse().ok()?)))
        }
    }
}

fn put_in(dir: &Path, key: &Key, answer: Option<(i64, i64)>) {
    let settled = SystemTime::now()
        .duration_since(key.modified)
        .is_ok_and(|age| age >= SETTLED);
    if !settled || std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let answer = match answer {
        Some((lo, hi)) => format!("{lo} {hi}"),
        None => "none".to_string(),
    };
    // Written aside, then renamed: a reader sees a whole entry or none.
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
        return;
    };
    if writeln!(tmp, "{}\n{answer}", key.text).is_ok() {
        let _ = tmp.persist(dir.join(key.file_name()));
    }
    trim(dir);
}

/// Removes the older half of the entries when there are too many.
fn trim(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            Some((e.metadata().ok()?.modified().ok()?, e.path()))
        })
        .collect();
    if entries.len() <= MAX_ENTRIES {
        return;
    }
    entries.sort();
    for (_, path) in &entries[..entries.len() / 2] {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_for_its_key_once_the_file_has_settled() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path();
        let old = SystemTime::now() - Duration::from_secs(60);
        let at = |path: &str, size, modified, summary| {
            Key::new(Path::new(path), size, modified, summary)
        };
        let key = at("/d/profiles.parquet", 100, old, "10 1 10 1");
        assert_eq!(get_in(dir, &key), None);
        put_in(dir, &key, Some((1, 10)));
        assert_eq!(get_in(dir, &key), Some(Some((1, 10))));
        // Another size, time, summary or path is another key.
        let later = old + Duration::from_millis(1);
        for other in [
            at("/d/profiles.parquet", 101, old, "10 1 10 1"),
            at("/d/profiles.parquet", 100, later, "10 1 10 1"),
            at("/d/profiles.parquet", 100, old, "10 1 11 1"),
            at("/e/profiles.parquet", 100, old, "10 1 10 1"),
        ] {
            assert_eq!(get_in(dir, &other), None, "{other:?}");
        }
        let none = at("/d/p2.parquet", 100, old, "4 5 8 1");
        put_in(dir, &none, None);
        assert_eq!(get_in(dir, &none), Some(None));
        // A file modified just now is not kept.
        let fresh = at("/d/p3.parquet", 100, SystemTime::now(), "4 5 8 1");
        put_in(dir, &fresh, Some((5, 8)));
        assert_eq!(get_in(dir, &fresh), None);
        // Past the limit, the older half goes: 2 + 511 entries, then one
        // past the limit (half of it is left), then 2 more.
        for i in 0..MAX_ENTRIES + 2 {
            put_in(dir, &at(&format!("/f/{i}"), 1, old, "1 1 1 1"), None);
        }
        let kept = std::fs::read_dir(dir).unwrap().count();
        // 513 entries, less the 256 older, and 3 more.
        assert_eq!(kept, MAX_ENTRIES / 2 + 4);
    }
}
