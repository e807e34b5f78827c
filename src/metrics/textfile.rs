//! `--metrics-textfile`: the final metrics written atomically (temp file in the same dir,
//! then rename) for node_exporter's textfile collector.
//!
//! node_exporter reads every `*.prom` file of its directory at each scrape; a reader must
//! never see half a file, so the text goes to a hidden temp file first (a name that does not
//! end in `.prom`), is flushed to disk, and is renamed over the target. The file is mode
//! 0644: metrics hold no secret, and node_exporter usually runs as another user.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Replaces `path` with `text` atomically.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("write metrics textfile {}: not a file path", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = dir.join(temp_name);

    let result = write_synced(&temp, text).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        // Best effort: the temp file is ours and useless now.
        let _ = fs::remove_file(&temp);
    }
    result?;
    // Make the rename itself durable; a directory that cannot be opened (some platforms)
    // is not worth failing a run for.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn write_synced(temp: &Path, text: &str) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o644);
    }
    let mut file = options.open(temp)?;
    #[cfg(unix)]
    {
        // The umask may have taken bits away; node_exporter must be able to read it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cmafleet.prom");
        fs::write(&path, "old\n").unwrap();
        write(&path, "cmafleet_sites{outcome=\"failed\"} 1\n").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "cmafleet_sites{outcome=\"failed\"} 1\n"
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("cmafleet.prom")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("cmafleet.prom");
        let error = write(&path, "x 1\n").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
