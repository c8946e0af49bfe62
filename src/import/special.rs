//! The vsftpd settings that are translated rather than copied: the listeners (`listen`,
//! `listen_ipv6`, `listen_address6`) and the PAM service name.
//!
//! What it does: works out which sockets vsftpd really served and writes rftpd's equivalent,
//! and maps vsftpd's own PAM service file to rftpd's; each with a comment saying why.
//!
//! What it must never do: drop a listener vsftpd served, write or read any file, or contain
//! `unsafe` code.

use std::collections::HashSet;

use super::output::{Translation, toml_string};
use super::read::Setting;

/// The effective `listen`, `listen_ipv6` and `listen_address6` of the vsftpd file (a line
/// vsftpd would refuse counts as absent: vsftpd's default).
pub(super) struct Listen {
    v4: bool,
    v6: bool,
    /// `listen_address6` is set to something other than `::`.
    v6_address: bool,
}

impl Listen {
    pub(super) fn new<'a>(effective: &dyn Fn(&str) -> Option<&'a Setting<'a>>) -> Listen {
        let flag = |name: &str| effective(name).is_some_and(|s| s.toml.as_deref() == Some("true"));
        let v6_address = effective("listen_address6").is_some_and(|s| {
            !s.raw.is_empty() && s.raw.parse() != Ok(std::net::Ipv6Addr::UNSPECIFIED)
        });
        Listen {
            v4: flag("listen"),
            v6: flag("listen_ipv6"),
            v6_address,
        }
    }

    pub(super) fn applies(&self, keys: &HashSet<&str>) -> bool {
        keys.contains("listen") && keys.contains("listen_ipv6")
    }

    /// vsftpd ignores an address for a listener it does not run.
    pub(super) fn ignores(&self, name: &str) -> Option<&'static str> {
        match name {
            "listen_address" if !self.v4 => Some("listen=NO"),
            "listen_address6" if !self.v6 => Some("listen_ipv6=NO"),
            _ => None,
        }
    }

    pub(super) fn emit(&self, out: &mut Translation, origin: &str) {
        let (v4, v6, note) = match (self.v4, self.v6) {
            (true, false) => (true, false, None),
            (false, true) if !self.v6_address => (
                true,
                true,
                Some(
                    "listen=NO with listen_ipv6=YES (Debian's setting): vsftpd listened on one \
                     IPv6 socket on :: that also accepted IPv4 clients. rftpd serves both from one \
                     process with an IPv4 and an IPv6 socket: listen = true, listen_ipv6 = true."
                        .to_owned(),
                ),
            ),
            (false, true) => (
                false,
                true,
                Some(
                    "listen_ipv6=YES with an IPv6 listen_address6: vsftpd served IPv6 only, \
                     and so does rftpd."
                        .to_owned(),
                ),
            ),
            (true, true) => {
                out.warn(format!(
                    "{origin}: listen=YES and listen_ipv6=YES together make vsftpd refuse to \
                     start; rftpd serves both"
                ));
                (
                    true,
                    true,
                    Some(
                        "listen=YES with listen_ipv6=YES: vsftpd refuses to start with both \
                         (it asks for two copies); rftpd serves IPv4 and IPv6 from one process."
                            .to_owned(),
                    ),
                )
            }
            (false, false) => {
                out.warn(format!(
                    "{origin}: neither listen nor listen_ipv6 is YES, so vsftpd was started by \
                     inetd; rftpd runs as a daemon (rftpd.service) or socket-activated \
                     (rftpd.socket): listen = true"
                ));
                (
                    true,
                    false,
                    Some(
                        "listen=NO with listen_ipv6=NO: vsftpd ran from inetd or xinetd. rftpd \
                         runs as a daemon (systemctl enable --now rftpd) or from systemd's \
                         rftpd.socket; it has no inetd mode. Listening on IPv4 here."
                            .to_owned(),
                    ),
                )
            }
        };
        if let Some(note) = note {
            out.comment(note);
        }
        out.setting("listen", v4.to_string(), "listen".into(), 0);
        out.setting("listen_ipv6", v6.to_string(), "listen_ipv6".into(), 0);
    }
}

/// `nopriv_user` and `secure_chroot_dir` at vsftpd's defaults (`nobody`,
/// `/var/run/vsftpd/empty`) name vsftpd's own account and directory, made by its package and
/// gone with it: rftpd keeps its own (`rftpd`, `/run/rftpd/empty`, made by rftpd's package),
/// or it would refuse to start once vsftpd is removed. Other values are carried over.
pub(super) fn keeps_rftpds_own(s: &Setting<'_>) -> Option<&'static str> {
    match s.option.name {
        "nopriv_user" if Some(s.raw) == s.option.default => Some(
            "vsftpd's default account; rftpd runs its pre-login process as its own account, \
             rftpd (rftpd's default)",
        ),
        "secure_chroot_dir" if Some(s.raw) == s.option.default => Some(
            "vsftpd's own empty directory, which goes with the vsftpd package; rftpd uses its \
             own, /run/rftpd/empty (rftpd's default)",
        ),
        _ => None,
    }
}

/// `pam_service_name`: vsftpd's own service file becomes rftpd's.
pub(super) fn pam_service(out: &mut Translation, setting: Option<&Setting<'_>>) {
    let name = setting.map_or("vsftpd", |s| s.raw);
    if name.is_empty() {
        // vsftpd itself would fail at PAM start; keep rftpd's default.
        out.comment(
            "pam_service_name is empty in vsftpd.conf; rftpd uses its own service, rftpd"
                .to_owned(),
        );
        return;
    }
    let Some(setting) = setting else {
        out.comment(format!(
            "vsftpd used the PAM service `{name}` (/etc/pam.d/{name}); rftpd uses /etc/pam.d/rftpd, \
             which has the rules of Debian's /etc/pam.d/vsftpd (the /etc/ftpusers deny list and \
             pam_shells). If you changed /etc/pam.d/{name}, make the same change in /etc/pam.d/rftpd."
        ));
        return;
    };
    let source = format!("pam_service_name={name}");
    if name == "vsftpd" || name == "ftp" {
        out.comment(format!(
            "pam_service_name={name}: rftpd ships its own PAM service, /etc/pam.d/rftpd, with the \
             rules of Debian's /etc/pam.d/vsftpd (the /etc/ftpusers deny list and pam_shells). \
             If you changed /etc/pam.d/{name}, make the same change in /etc/pam.d/rftpd."
        ));
        out.setting(
            "pam_service_name",
            toml_string("rftpd"),
            source,
            setting.line,
        );
    } else {
        out.comment(format!(
            "pam_service_name={name}: rftpd keeps using /etc/pam.d/{name}; check that it suits \
             rftpd (compare /etc/pam.d/rftpd)."
        ));
        out.setting("pam_service_name", toml_string(name), source, setting.line);
    }
}
