//! The relay's own multi-line replies: `STAT` without argument and `HELP`, in vsftpd's shape.
//!
//! libunftp's texts for both name its own types and another project's web address; these
//! say only what the session is (address, user, type, TLS), like vsftpd's.

use std::net::IpAddr;

use crate::worker::arguments::DataType;

/// What `STAT` reports about the session.
pub struct SessionStatus<'a> {
    pub client_ip: IpAddr,
    pub user: &'a str,
    pub data_type: DataType,
    pub idle_timeout: u64,
    pub control_tls: bool,
    pub data_tls: bool,
}

/// vsftpd's `211-FTP server status:` … `211 End of status`.
pub fn stat(s: &SessionStatus<'_>) -> String {
    let mut lines = vec![
        "211-FTP server status:".to_string(),
        format!("     Connected to {}", s.client_ip),
        format!("     Logged in as {}", s.user),
        format!(
            "     TYPE: {}",
            match s.data_type {
                DataType::Ascii => "ASCII",
                DataType::Binary => "BINARY",
            }
        ),
    ];
    if s.idle_timeout == 0 {
        lines.push("     No session timeout".into());
    } else {
        lines.push(format!(
            "     Session timeout in seconds is {}",
            s.idle_timeout
        ));
    }
    lines.push(
        if s.control_tls {
            "     Control connection is encrypted"
        } else {
            "     Control connection is plain text"
        }
        .into(),
    );
    lines.push(
        if s.data_tls {
            "     Data connections will be encrypted"
        } else {
            "     Data connections will be plain text"
        }
        .into(),
    );
    lines.push(format!("     rftpd {}", env!("CARGO_PKG_VERSION")));
    lines.push("211 End of status".into());
    lines.join("\r\n")
}

/// vsftpd's `214-The following commands are recognized.` … `214 Help OK.`, with rftpd's verbs.
pub const HELP: &str = "214-The following commands are recognized.\r\n \
ABOR ACCT ALLO APPE CCC  CDUP CWD  DELE EPRT EPSV FEAT HELP LIST MDTM\r\n \
MKD  MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD  QUIT\r\n \
REST RETR RMD  RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER\r\n \
MFMT XCUP XCWD XMKD XPWD XRMD\r\n\
214 Help OK.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_names_the_session_and_nothing_of_the_library() {
        let text = stat(&SessionStatus {
            client_ip: "127.0.0.1".parse().unwrap(),
            user: "alice",
            data_type: DataType::Binary,
            idle_timeout: 300,
            control_tls: true,
            data_tls: false,
        });
        assert!(text.starts_with("211-FTP server status:\r\n"));
        assert!(text.ends_with("\r\n211 End of status"));
        assert!(text.contains("Connected to 127.0.0.1"));
        assert!(text.contains("Logged in as alice"));
        assert!(text.contains("TYPE: BINARY"));
        assert!(text.contains("Control connection is encrypted"));
        assert!(text.contains("Data connections will be plain text"));
        assert!(!text.to_ascii_lowercase().contains("unftp"));
    }

    #[test]
    fn help_lines_are_continuation_lines() {
        let lines: Vec<&str> = HELP.split("\r\n").collect();
        assert_eq!(lines[0], "214-The following commands are recognized.");
        assert_eq!(*lines.last().unwrap(), "214 Help OK.");
        for line in &lines[1..lines.len() - 1] {
            assert!(line.starts_with(' '), "{line:?}");
        }
    }
}
