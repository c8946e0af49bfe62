//! The directory listings of the session's storage backend: `LIST` (with `-a`/`-R` as the
//! relay passed them on, hidden and denied names left out, names escaped for the wire) and
//! `NLST` (names only). Runs in the worker, as the user, jailed. Listings are built from the
//! mapped names of `crate::names` and written to the data connection as the names' bytes.

use std::io;
use std::path::Path;

use unftp_core::storage::{Error, Metadata, StorageBackend};

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
        let e = self
            .allow(|r| r.dirlist, &path)
            .map_err(|err| self.refused("550 Permission denied.", err))?;
        self.check_data_connection(e).await?;
        if flags.mlsd {
            return self.fact_listing(e, &path).await;
        }
        // LIST of a path that is missing or cannot be read is an empty listing (vsftpd); LIST
        // of a file lists that one file.
        let Ok(meta) = self.metadata(user, &path).await else {
            self.ready("150 Here comes the directory listing.".into());
            return Ok(io::Cursor::new(Vec::new()));
        };
        let listing_dir = meta.is_dir();
        let entries = if listing_dir {
            self.read_dir(&path).await.unwrap_or_default()
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
        self.ready("150 Here comes the directory listing.".into());
        let now = SystemTime::now();
        let mut out = String::with_capacity(entries.len() * 64);
        if !listing_dir {
            for entry in &entries {
                listing::write_entry(
                    &mut out,
                    &entry.path.to_string_lossy(),
                    &entry.metadata,
                    &e.owners,
                    now,
                );
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
                out.push_str(&dir.to_string_lossy());
                out.push_str(":\r\n");
            }
            let mut subdirs = Vec::new();
            for entry in &entries {
                let name = entry_name(entry);
                if !self.visible_in_listing(&name, flags.all) {
                    continue;
                }
                listing::write_entry(&mut out, &name, &entry.metadata, &e.owners, now);
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
        let e = self
            .allow(|r| r.dirlist, path)
            .map_err(|err| self.refused("550 Permission denied.", err))
            .map_err(refused)?;
        self.check_data_connection(e).await.map_err(refused)?;
        let dir = real_path(path);
        // NLST of a path that is missing or cannot be read is an empty listing (vsftpd).
        let mut names = on_session_thread(|| fsmeta::read_names(&dir)).unwrap_or_default();
        self.ready("150 Here comes the directory listing.".into());
        names.retain(|name| self.visible_in_listing(name, flags.all));
        names.sort_unstable();
        let mut out = String::with_capacity(names.iter().map(|n| n.len() + 2).sum());
        for name in &names {
            out.push_str(&listing::wire_name(name));
            out.push_str("\r\n");
        }
        Ok(on_the_wire(out))
    }

    /// `MLSD` (the relay forwards it as `LIST` with the `mlsd` flag): one RFC 3659 fact line
    /// per visible entry. A path that is not a readable directory is refused before the `150`
    /// (RFC 3659 §7.2: 550, and 501 for a file).
    async fn fact_listing(
        &self,
        e: &Entered,
        path: &Path,
    ) -> std::result::Result<io::Cursor<Vec<u8>>, Error> {
        let dir = real_path(path);
        let listed = on_session_thread(|| {
            let own = fsmeta::stat_followed(&dir)?;
            if !own.is_dir() {
                return Ok(None);
            }
            let entries = fsmeta::read_dir(&dir)?;
            let entries = entries
                .into_iter()
                .map(|(name, meta)| {
                    let followed = meta
                        .is_symlink()
                        .then(|| fsmeta::stat_followed(&names::to_fs(&dir.join(&name))).ok())
                        .flatten();
                    (name, meta, followed)
                })
                .collect::<Vec<_>>();
            Ok(Some((own, entries)))
        })
        .map_err(|err| self.refused("550 Failed to open directory.", err))?;
        let Some((own, mut entries)) = listed else {
            return Err(self.refused(
                "501 Not a directory.",
                Error::from(unftp_core::storage::ErrorKind::PermanentDirectoryNotAvailable),
            ));
        };
        self.ready("150 Here comes the directory listing.".into());
        entries.sort_unstable_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
        let context = facts::FactContext {
            facts: self.shared.mlst_facts(),
            rights: &e.rights,
            asker: &e.asker,
            hide_ids: self.shared.config.hide_ids,
            parent: Some(&own),
        };
        let mut out = String::with_capacity(entries.len() * 96);
        for (name, meta, followed) in &entries {
            let name = name.to_string_lossy();
            if !self.visible_in_listing(&name, true) {
                continue;
            }
            context.write_line(&mut out, &name, meta, followed.as_ref());
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
