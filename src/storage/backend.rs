//! libunftp's view of the session's storage: `StorageBackend` for [`JailedStorage`], each
//! operation checked against the session's rights (`allow`) before it touches the file
//! system, then done by the helpers of `super` and its modules (listings, transfers, times).
//!
//! Runs in the worker, as the logged-in user, jailed (after `enter`). It must never resolve a
//! path outside the chroot, act before the session's rights allow it, or answer a transfer
//! before the data connection's protection was checked.

use super::*;

#[async_trait]
impl StorageBackend<SessionUser> for JailedStorage {
    type Metadata = FileMeta;

    fn enter(&mut self, user: &SessionUser) -> io::Result<()> {
        if self.entered.is_some() {
            tracing::error!("second login in one session; aborting");
            std::process::abort();
        }
        let granted = self
            .shared
            .grant
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(grant) = granted else {
            tracing::error!("enter without a login granted by the monitor; aborting");
            std::process::abort();
        };
        let config = &self.shared.config;
        // The worker set the process umask at the jail; libunftp's `enter` must not change it.
        let umask = if grant.anonymous {
            config.anon_umask
        } else {
            config.local_umask
        };
        let _ = user;
        let fs = match Filesystem::new("/") {
            Ok(fs) => fs,
            Err(e) => {
                tracing::error!(error = %e, "cannot open the session's root; aborting");
                std::process::abort();
            }
        };
        let owners = OwnerNames {
            uid: grant.uid,
            user: grant.user_name,
            gid: grant.gid,
            group: grant.group_name,
            hide_ids: config.hide_ids,
        };
        let rights = self.rights_for(grant.anonymous);
        self.shared
            .rename_allowed
            .store(rights.modify, Ordering::SeqCst);
        self.entered = Some(Entered {
            fs,
            umask: umask.0,
            owners,
            rights,
            asker: facts::Asker::current(),
            max_rate: if grant.anonymous {
                config.anon_max_rate
            } else {
                config.local_max_rate
            },
        });
        self.shared.logged_in.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn supported_features(&self) -> u32 {
        FEATURE_RESTART
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &SessionUser,
        path: P,
    ) -> Result<FileMeta> {
        self.allow(|_| true, path.as_ref())?;
        let path = real_path(path.as_ref());
        on_session_thread(|| fsmeta::stat(&path))
    }

    async fn list<P>(
        &self,
        _user: &SessionUser,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, FileMeta>>>
    where
        P: AsRef<Path> + Send + Debug,
    {
        self.data_connection_arrived();
        let e = self
            .allow(|r| r.dirlist, path.as_ref())
            .map_err(|err| self.refused("550 Permission denied.", err))?;
        self.check_data_connection(e).await?;
        let mut entries = self
            .read_dir(path.as_ref())
            .await
            .map_err(|err| self.refused("550 Failed to open directory.", err))?;
        self.ready("150 Here comes the directory listing.".into());
        entries.retain(|f| {
            f.path
                .file_name()
                .is_none_or(|n| self.visible(&n.to_string_lossy()))
        });
        Ok(entries)
    }

    /// `STAT path` lists over the control connection: no data connection to check.
    async fn list_vec<P>(
        &self,
        _user: &SessionUser,
        path: P,
    ) -> std::result::Result<Vec<String>, Error>
    where
        P: AsRef<Path> + Send + Debug,
    {
        let e = self.allow(|r| r.dirlist, path.as_ref())?;
        let now = SystemTime::now();
        let entries = self.read_dir(path.as_ref()).await?;
        Ok(entries
            .iter()
            .filter_map(|f| {
                let name = f.path.file_name()?.to_string_lossy().into_owned();
                self.visible_in_listing(&name, false)
                    .then(|| format_entry(&name, &f.metadata, &e.owners, now))
            })
            .collect())
    }

    async fn list_fmt<P>(
        &self,
        user: &SessionUser,
        path: P,
    ) -> std::result::Result<io::Cursor<Vec<u8>>, Error>
    where
        P: AsRef<Path> + Send + Debug,
    {
        self.formatted_listing(user, path.as_ref()).await
    }

    /// Names only: no metadata is read (NLST of a large directory stays cheap).
    async fn nlst<P>(
        &self,
        _user: &SessionUser,
        path: P,
    ) -> std::result::Result<io::Cursor<Vec<u8>>, io::Error>
    where
        P: AsRef<Path> + Send + Debug,
    {
        self.name_listing(path.as_ref()).await
    }

    async fn get_into<'a, P, W: ?Sized>(
        &self,
        _user: &SessionUser,
        path: P,
        start_pos: u64,
        output: &'a mut W,
    ) -> Result<u64>
    where
        W: AsyncWrite + Unpin + Sync + Send,
        P: AsRef<Path> + Send + Debug,
    {
        let record =
            records::TransferRecord::start(&self.shared, Direction::Download, path.as_ref());
        let mut counted = records::Counting {
            inner: output,
            count: record.bytes.clone(),
        };
        let sent = record.bytes.clone();
        let result = self
            .download_into(path.as_ref(), start_pos, &mut counted, &sent)
            .await;
        record.done(result)
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &SessionUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        let (mut file, _, _) = self.open_download(path.as_ref()).await?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(start_pos)).map_err(Error::from)?;
        Ok(Box::new(tokio::io::BufReader::with_capacity(
            CHUNK,
            tokio::fs::File::from_std(file),
        )))
    }

    async fn put<P: AsRef<Path> + Send + Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        _user: &SessionUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        let record = records::TransferRecord::start(&self.shared, Direction::Upload, path.as_ref());
        let moved = record.bytes.clone();
        let counted = records::Counting {
            inner: input,
            count: moved.clone(),
        };
        record.done(self.upload(counted, path.as_ref(), start_pos, &moved).await)
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &SessionUser, path: P) -> Result<()> {
        let shown = real_path(path.as_ref());
        let result = match self.allow(|r| r.modify, path.as_ref()) {
            Ok(e) => e.fs.del(user, names::to_fs(path.as_ref())).await,
            Err(e) => Err(e),
        };
        records::op(&self.shared, Op::Delete, &shown, None, result)
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &SessionUser, path: P) -> Result<()> {
        let shown = real_path(path.as_ref());
        let result = match self.allow(|r| r.mkdir, path.as_ref()) {
            Ok(e) => e.fs.mkd(user, names::to_fs(path.as_ref())).await,
            Err(e) => Err(e),
        };
        records::op(&self.shared, Op::Mkdir, &shown, None, result)
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &SessionUser,
        from: P,
        to: P,
    ) -> Result<()> {
        let (shown_from, shown_to) = (real_path(from.as_ref()), real_path(to.as_ref()));
        let result = match self
            .allow(|r| r.modify, to.as_ref())
            .and_then(|_| self.allow(|r| r.modify, from.as_ref()))
        {
            Ok(e) => {
                let (from, to) = (names::to_fs(from.as_ref()), names::to_fs(to.as_ref()));
                e.fs.rename(user, from, to).await
            }
            Err(e) => Err(e),
        };
        records::op(
            &self.shared,
            Op::Rename,
            &shown_from,
            Some(&shown_to),
            result,
        )
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &SessionUser, path: P) -> Result<()> {
        let shown = real_path(path.as_ref());
        let result = match self.allow(|r| r.modify, path.as_ref()) {
            Ok(e) => e.fs.rmd(user, names::to_fs(path.as_ref())).await,
            Err(e) => Err(e),
        };
        records::op(&self.shared, Op::Rmdir, &shown, None, result)
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, _user: &SessionUser, path: P) -> Result<()> {
        let path = path.as_ref().to_path_buf();
        self.entered()?;
        // libunftp catching up on a CWD the relay answered (and checked) on its own turn: a
        // directory removed since then is found by the next command that uses it, as when
        // a session's directory is removed under it.
        if !self.shared.take_catching_up(&path) {
            // On the session's thread: a CWD costs no blocking-pool hop.
            lookup::may_enter(&self.deny, &path)?;
        }
        self.shared.set_working_dir(path);
        Ok(())
    }
}
