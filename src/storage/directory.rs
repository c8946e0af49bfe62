//! The directory listings of the session's storage backend: `LIST` (with `-a`/`-R` as the
//! relay passed them on, hidden and denied names left out, names escaped for the wire) and
//! `NLST` (names only). Runs in the worker, as the user, jailed. Listings are built from the
//! mapped names of `crate::names` and written to the data connection as the names' bytes.

use std::io;
use std::path::Path;

use unftp_core::storage::{Error, ErrorKind, Metadata, StorageBackend};

use super::*;

impl JailedStorage {
    pub(super) async fn formatted_listing(
        &self,
        user: &SessionUser,
        path: &Path,
    ) -> std::result::Result<io::Cursor<Vec<u8>>, Error> {
        self.data_connection_arrived();
        // Taken first, so a listing refused below leaves no flags for the next one.
        let flags = self.shared.take_list_flags();
        let path = path.to_path_buf();
        let e = self.allow(|r| r.dirlist, &path)?;
        self.check_data_connection(e).await?;
        // LIST of a file lists that one file.
        let meta = self.metadata(user, &path).await?;
        let listing_dir = meta.is_dir();
        let entries = if listing_dir {
            self.read_dir(&path).await?
        } else {
            let name = path
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| path.clone());
            vec![Fileinfo {
                path: name,
                metadata: meta,
            }]
        };
        let now = SystemTime::now();
        let mut out = String::with_capacity(entries.len() * 64);
        if flags.mlsd {
            // RFC 3659 §7.1: MLSD lists a directory; dot files are listed, hide_file applies.
            if !listing_dir {
                return Err(Error::from(ErrorKind::PermanentDirectoryNotAvailable));
            }
            for entry in &entries {
                let name = entry_name(entry);
                if self.visible(&name) {
                    out.push_str(&listing::mlsd_entry(&name, &entry.metadata));
                    out.push_str("\r\n");
                }
            }
            return Ok(on_the_wire(out));
        }
        if !listing_dir {
            for entry in &entries {
                out.push_str(&format_entry(
                    &entry.path.to_string_lossy(),
                    &entry.metadata,
                    &e.owners,
                    now,
                ));
                out.push_str("\r\n");
            }
            return Ok(on_the_wire(out));
        }
        // `LIST -R` (with ls_recurse_enable): `ls -R`'s layout, subdirectories depth first,
        // bounded so one command cannot walk a whole disk.
        let recursive = flags.recursive && self.shared.config.ls_recurse_enable;
        let mut entries = entries;
        entries.sort_unstable_by(|a, b| a.path.as_os_str().cmp(b.path.as_os_str()));
        let mut pending = vec![(path.clone(), entries)];
        let mut listed = 0usize;
        while let Some((dir, entries)) = pending.pop() {
            if recursive {
                out.push_str(&format!("{}:\r\n", dir.display()));
            }
            let mut subdirs = Vec::new();
            for entry in &entries {
                let name = entry_name(entry);
                if !self.visible_in_listing(&name, flags.all) {
                    continue;
                }
                out.push_str(&format_entry(&name, &entry.metadata, &e.owners, now));
                out.push_str("\r\n");
                if recursive && entry.metadata.is_dir() {
                    subdirs.push(dir.join(&entry.path));
                }
            }
            listed += entries.len();
            if recursive && listed < MAX_RECURSIVE_ENTRIES && pending.len() < MAX_RECURSIVE_ENTRIES
            {
                // Depth first in name order: the last pushed is listed next.
                for sub in subdirs.into_iter().rev() {
                    if let Ok(mut sub_entries) = self.read_dir(&sub).await {
                        sub_entries
                            .sort_unstable_by(|a, b| a.path.as_os_str().cmp(b.path.as_os_str()));
                        pending.push((sub, sub_entries));
                    }
                }
            }
            if recursive && !pending.is_empty() {
                out.push_str("\r\n");
            }
        }
        Ok(on_the_wire(out))
    }

    pub(super) async fn name_listing(
        &self,
        path: &Path,
    ) -> std::result::Result<io::Cursor<Vec<u8>>, io::Error> {
        self.data_connection_arrived();
        let flags = self.shared.take_list_flags();
        let refused = |_| io::Error::from(io::ErrorKind::PermissionDenied);
        let e = self.allow(|r| r.dirlist, path).map_err(refused)?;
        self.check_data_connection(e).await.map_err(refused)?;
        let dir = real_path(path);
        let mut names = on_session_thread(|| fsmeta::read_names(&dir)).map_err(refused)?;
        names.retain(|name| self.visible_in_listing(name, flags.all));
        names.sort_unstable();
        let mut out = String::with_capacity(names.iter().map(|n| n.len() + 2).sum());
        for name in &names {
            out.push_str(&listing::wire_name(name));
            out.push_str("\r\n");
        }
        Ok(on_the_wire(out))
    }
}

/// A listing for the data connection: names go out as their bytes (`crate::names`).
fn on_the_wire(listing: String) -> io::Cursor<Vec<u8>> {
    io::Cursor::new(match names::to_wire(listing.as_bytes()) {
        std::borrow::Cow::Borrowed(_) => listing.into_bytes(),
        std::borrow::Cow::Owned(bytes) => bytes,
    })
}
