//! `SITE` subcommands vsftpd users expect: `CHMOD`, `UMASK`, `HELP`.
//!
//! They act only through the session's storage backend, so the same rights apply as to every
//! other command (`SITE CHMOD` needs `write_enable` and `chmod_enable`, never for anonymous).
//!
//! SECURITY: `SITE CHMOD` keeps only the permission bits (mode & 0777), as vsftpd does: a
//! client never sets setuid, setgid or sticky bits.

use async_trait::async_trait;
use libunftp::ServerBuilder;
use libunftp::options::{Reply, ReplyCode, SiteCommandContext, SiteCommandHandler};

use crate::storage::JailedStorage;
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
        Reply::new(ReplyCode::HelpMessage, "CHMOD UMASK HELP")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_chmod;

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
