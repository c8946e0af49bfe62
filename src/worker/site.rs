//! `SITE` subcommands vsftpd users expect: `CHMOD`, `UMASK`, `HELP`, and `UTIME` (lftp's
//! way of keeping modification times) — plus the file queries the relay routes here because
//! libunftp's own replies are not vsftpd's or lack what rftpd adds: `SIZE`, `MDTM` (with the
//! two-argument form behind `mdtm_write`), `MFMT` and `MLST` arrive as `SITE SIZE …` etc.
//!
//! They act only through the session's storage backend, so the same rights apply as to every
//! other command (`SITE CHMOD` needs `write_enable` and `chmod_enable`, never for anonymous).
//!
//! SECURITY: `SITE CHMOD` keeps only the permission bits (mode & 0777), as vsftpd does: a
//! client never sets setuid, setgid or sticky bits.

use async_trait::async_trait;
use libunftp::ServerBuilder;
use libunftp::options::{Reply, ReplyCode, SiteCommandContext, SiteCommandHandler};

use std::time::SystemTime;

use crate::storage::JailedStorage;
use crate::storage::facts::{parse_timestamp, timestamp};
use crate::storage::listing::wire_name;
use crate::worker::authenticator::SessionUser;

type Context = SiteCommandContext<JailedStorage, SessionUser>;

/// Add rftpd's SITE commands to a server being built.
pub fn register(
    builder: ServerBuilder<JailedStorage, SessionUser>,
) -> ServerBuilder<JailedStorage, SessionUser> {
    builder
        .site_command("CHMOD", Chmod)
        .site_command("UMASK", Umask)
        .site_command("HELP", Help)
        .site_command("UTIME", Utime)
        .site_command("SIZE", Size)
        .site_command("MDTM", Mdtm)
        .site_command("MFMT", Mfmt)
        .site_command("MLST", Mlst)
}

/// `SITE CHMOD <octal mode> <path>`.
#[derive(Debug)]
struct Chmod;

/// Split `"644 some file"` into a mode (at most 0o7777) and a path.
fn parse_chmod(arguments: &str) -> Option<(u32, &str)> {
    let (mode, path) = arguments.trim_start().split_once(' ')?;
    let mode = u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777)?;
    let path = path.trim_start();
    (!path.is_empty()).then_some((mode, path))
}

#[async_trait]
impl SiteCommandHandler<JailedStorage, SessionUser> for Chmod {
    async fn handle(&self, ctx: &Context) -> Reply {
        let Some((mode, path)) = parse_chmod(&ctx.arguments) else {
            return Reply::new(ReplyCode::ParameterSyntaxError, "Bad SITE CHMOD command.");
        };
        match ctx.storage.chmod(mode & 0o777, path).await {
            Ok(()) => Reply::new(ReplyCode::CommandOkay, "SITE CHMOD command ok."),
            Err(e) if e.kind() == unftp_core::storage::ErrorKind::PermissionDenied => {
                Reply::new(ReplyCode::FileError, "Permission denied.")
            }
            Err(_) => Reply::new(ReplyCode::FileError, "SITE CHMOD command failed."),
        }
    }
}

/// `SITE UMASK`: show the session's umask (vsftpd also lets it be changed; rftpd keeps the
/// operator's setting).
#[derive(Debug)]
struct Umask;

#[async_trait]
impl SiteCommandHandler<JailedStorage, SessionUser> for Umask {
    async fn handle(&self, ctx: &Context) -> Reply {
        if ctx.arguments.trim().is_empty() {
            Reply::new_with_string(
                ReplyCode::CommandOkay,
                format!("Your current UMASK is {:04o}", ctx.storage.umask()),
            )
        } else {
            Reply::new(ReplyCode::FileError, "Permission denied.")
        }
    }
}

#[derive(Debug)]
struct Help;

#[async_trait]
impl SiteCommandHandler<JailedStorage, SessionUser> for Help {
    async fn handle(&self, _ctx: &Context) -> Reply {
        Reply::new(ReplyCode::HelpMessage, "CHMOD UMASK UTIME HELP")
    }
}

/// A time as clients write it: `YYYYMMDDHHMMSS`, `YYYYMMDDHHMM` or with `.fff`, in UTC.
fn client_time(text: &str) -> Option<SystemTime> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        return parse_timestamp(&format!("{text}00"));
    }
    parse_timestamp(text)
}

/// `time path` (MFMT, vsftpd's MDTM, the two-argument SITE UTIME).
pub(crate) fn time_and_path(arguments: &str) -> Option<(SystemTime, &str)> {
    let (time, path) = arguments.split_once(' ')?;
    let path = path.trim_start();
    (!path.is_empty()).then_some((client_time(time)?, path))
}

/// `SITE UTIME path atime mtime ctime UTC` (the path may hold spaces) or `SITE UTIME time
/// path`: the path, the modification time and the access time.
fn parse_utime(arguments: &str) -> Option<(&str, SystemTime, Option<SystemTime>)> {
    let words: Vec<&str> = arguments.rsplitn(5, ' ').collect();
    if let [utc, _ctime, mtime, atime, path] = words.as_slice()
        && utc.eq_ignore_ascii_case("UTC")
        && !path.is_empty()
        && let (Some(m), Some(a)) = (client_time(mtime), client_time(atime))
    {
        return Some((path, m, Some(a)));
    }
    let (time, path) = time_and_path(arguments)?;
    Some((path, time, None))
}

#[derive(Debug)]
struct Utime;

#[async_trait]
impl SiteCommandHandler<JailedStorage, SessionUser> for Utime {
    async fn handle(&self, ctx: &Context) -> Reply {
        let Some((path, modified, accessed)) = parse_utime(&ctx.arguments) else {
            return Reply::new(ReplyCode::ParameterSyntaxError, "Bad SITE UTIME command.");
        };
        if !ctx.storage.may_set_times() {
            return Reply::new(ReplyCode::FileError, "Permission denied.");
        }
        match ctx.storage.set_times(path, modified, accessed, false).await {
            Ok(()) => Reply::new(ReplyCode::CommandOkay, "SITE UTIME command ok."),
            Err(_) => Reply::new(
                ReplyCode::FileError,
                "Could not set file modification time.",
            ),
        }
    }
}

#[derive(Debug)]
struct Size;

#[async_trait]
impl SiteCommandHandler<JailedStorage, SessionUser> for Size {
    async fn handle(&self, ctx: &Context) -> Reply {
        match ctx.storage.file_size(&ctx.arguments).await {
            Ok(size) => Reply::new_with_string(ReplyCode::FileStatus, size.to_string()),
            Err(_) => Reply::new(ReplyCode::FileError, "Could not get file size."),
        }
    }
}

/// vsftpd's MDTM: `MDTM path` reads, `MDTM time path` sets (with `mdtm_write`; refused with
/// 550 when times may not be set, rather than vsftpd's reading of the path).
#[derive(Debug)]
struct Mdtm;

#[async_trait]
impl SiteCommandHandler<JailedStorage, SessionUser> for Mdtm {
    async fn handle(&self, ctx: &Context) -> Reply {
        let arguments = ctx.arguments.as_str();
        // vsftpd: a `time path` argument that is not itself a file's name sets the time.
        let setting = match time_and_path(arguments) {
            Some(found) if ctx.storage.mdtm_write() => ctx
                .storage
                .file_mtime(arguments)
                .await
                .is_err()
                .then_some(found),
            _ => None,
        };
        if let Some((time, path)) = setting {
            if !ctx.storage.may_set_times() {
                return Reply::new(
                    ReplyCode::FileError,
                    "Could not set file modification time.",
                );
            }
            return match ctx.storage.set_times(path, time, None, true).await {
                Ok(()) => Reply::new(ReplyCode::FileStatus, "File modification time set."),
                Err(_) => Reply::new(
                    ReplyCode::FileError,
                    "Could not set file modification time.",
                ),
            };
        }
        match ctx.storage.file_mtime(arguments).await {
            Ok(time) => Reply::new_with_string(ReplyCode::FileStatus, time),
            Err(_) => Reply::new(
                ReplyCode::FileError,
                "Could not get file modification time.",
            ),
        }
    }
}

/// draft-somers-ftp-mfxx: `MFMT time path` → `213 Modify=time; path`.
#[derive(Debug)]
struct Mfmt;

#[async_trait]
impl SiteCommandHandler<JailedStorage, SessionUser> for Mfmt {
    async fn handle(&self, ctx: &Context) -> Reply {
        let Some((time, path)) = time_and_path(&ctx.arguments) else {
            return Reply::new(
                ReplyCode::ParameterSyntaxError,
                "Syntax error in parameters or arguments.",
            );
        };
        if !ctx.storage.may_set_times() {
            return Reply::new(ReplyCode::FileError, "Permission denied.");
        }
        match ctx.storage.set_times(path, time, None, false).await {
            Ok(()) => Reply::new_with_string(
                ReplyCode::FileStatus,
                format!("Modify={}; {}", timestamp(time), wire_name(path)),
            ),
            Err(_) => Reply::new(
                ReplyCode::FileError,
                "Could not set file modification time.",
            ),
        }
    }
}

/// RFC 3659 `MLST [path]`: `250-Listing path`, one fact line, `250 End`.
#[derive(Debug)]
struct Mlst;

#[async_trait]
impl SiteCommandHandler<JailedStorage, SessionUser> for Mlst {
    async fn handle(&self, ctx: &Context) -> Reply {
        match ctx.storage.fact_line(&ctx.arguments).await {
            Ok(line) => Reply::new_multiline(
                ReplyCode::FileActionOkay,
                [
                    format!("Listing {}", wire_name(&ctx.arguments)),
                    format!(" {line}"),
                    "End".to_string(),
                ],
            ),
            Err(_) => Reply::new(ReplyCode::FileError, "Could not get file status."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_takes_lftps_two_forms() {
        let t = parse_timestamp("20200102030405").unwrap();
        let (path, m, a) =
            parse_utime("my file.txt 20200102030405 20200102030405 20200102030405 UTC").unwrap();
        assert_eq!((path, m, a), ("my file.txt", t, Some(t)));
        let (path, m, a) = parse_utime("20200102030405 my file.txt").unwrap();
        assert_eq!((path, m, a), ("my file.txt", t, None));
        assert_eq!(
            parse_utime("202001020304 f").map(|x| x.1),
            parse_timestamp("20200102030400")
        );
        assert!(parse_utime("f").is_none());
        assert!(parse_utime("2020 f").is_none());
        assert_eq!(time_and_path("20200102030405 "), None);
    }

    #[test]
    fn chmod_arguments_need_an_octal_mode_and_a_path() {
        assert_eq!(parse_chmod("644 a file.txt"), Some((0o644, "a file.txt")));
        assert_eq!(parse_chmod("0755 dir"), Some((0o755, "dir")));
        assert_eq!(parse_chmod("888 x"), None);
        assert_eq!(parse_chmod("17777 x"), None);
        assert_eq!(parse_chmod("644"), None);
        assert_eq!(parse_chmod("644 "), None);
    }
}
