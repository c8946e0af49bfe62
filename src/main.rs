//! # rftpd — FTP and FTPS for a Linux host's local accounts
//!
//! Layout, by the process that runs the code and its rights:
//! - [`master`] (root, tokio): binds, accepts, admits, hands each connection to the spawner.
//!   Never reads a client's byte.
//! - [`spawner`] (root, one thread): forks one monitor per connection, reaps, reports.
//! - [`monitor`] (root, one thread, per session): PAM ([`auth`]), NSS, policy, the request
//!   table, data sockets. Never reads a client's byte.
//! - [`prelogin`] (`nopriv_user`, chrooted into an empty directory, no capabilities): owns the
//!   control connection and its TLS for the whole session; the pre-login conversation.
//! - [`worker`] (the logged-in user, jailed): libunftp behind the relay; [`storage`]: what it
//!   does to files.
//! - [`protocol`]: every message that crosses a process boundary; [`control`]: the control
//!   connection's line and command parser, shared by the two that read it.
//! - [`metrics`] (`nopriv_user`, empty chroot, seccomp): the Prometheus endpoint, fed by the
//!   master's counts over a socketpair (`metrics_enable`).
//! - [`jail`]: root → user and root → `nopriv_user`, the two recipes; [`tls`], [`policy`].
//! - [`config`] / [`import`]: the TOML model with vsftpd's option names, and the importer.
//! - [`sys`]: the only place with `unsafe` (the compiler holds the line).
//!
//! This file only parses the command line and dispatches.

#![deny(unsafe_code)]

mod auth;
mod config;
mod control;
mod import;
mod jail;
mod logging;
mod master;
mod metrics;
mod monitor;
mod names;
mod policy;
mod prelogin;
mod protocol;
mod records;
mod spawner;
mod storage;
#[allow(unsafe_code)]
mod sys;
mod tls;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use config::{Config, DEFAULT_CONFIG_PATH};

const USAGE: &str = "\
Usage: rftpd [--config FILE]          run the server in the foreground
       rftpd --check-config [--config FILE]
                                      validate the configuration and exit
       rftpd import-vsftpd [FILE]     print the rftpd.toml equivalent of a vsftpd.conf
                                      (default /etc/vsftpd.conf)
       rftpd import-vsftpd --user-file FILE
                                      print the rftpd per-user file of one of vsftpd's
                                      user_config_dir files
       rftpd --version | --help

Without --config, rftpd reads /etc/rftpd.toml when it exists, else runs on its
embedded defaults. Logs go to stderr; RFTPD_LOG sets the filter (e.g. debug).";

#[derive(Debug, PartialEq)]
enum Mode {
    Serve,
    CheckConfig,
    Version,
    Help,
    Spawner,
    MetricsEndpoint,
    MonitorProbe,
}

#[derive(Debug, PartialEq)]
struct Args {
    mode: Mode,
    config: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut mode = Mode::Serve;
    let mut config = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                let file = it.next().ok_or("--config needs a file")?;
                config = Some(PathBuf::from(file));
            }
            s if s.starts_with("--config=") => {
                config = Some(PathBuf::from(&s["--config=".len()..]))
            }
            "--check-config" => mode = Mode::CheckConfig,
            "--version" | "-V" => mode = Mode::Version,
            "--help" | "-h" => mode = Mode::Help,
            "spawner" if args.len() == 1 => mode = Mode::Spawner,
            "metrics-endpoint" if args.len() == 1 => mode = Mode::MetricsEndpoint,
            "monitor-probe" => mode = Mode::MonitorProbe,
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Args { mode, config })
}

/// Load the config the way the master does; `None` path with no default file = embedded defaults.
/// Used by both `--check-config` and start-up: parses and validates, then checks the config
/// against this host (`nopriv_user`, `secure_chroot_dir`: [`Config::check_host`]).
fn load_config(
    path: Option<PathBuf>,
) -> Result<(Config, master::ConfigSource), config::ConfigErrors> {
    let default_path = PathBuf::from(DEFAULT_CONFIG_PATH);
    match path {
        Some(p) => Config::load_and_check_host(&p).map(|c| (c, master::ConfigSource::File(p))),
        None if default_path.exists() => Config::load_and_check_host(&default_path)
            .map(|c| (c, master::ConfigSource::File(default_path))),
        None => Config::default_and_check_host().map(|c| (c, master::ConfigSource::Defaults)),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "import-vsftpd") {
        return import::main(&argv[1..]);
    }
    // Hidden: the test suite's check of the seccomp allow-lists (jail/probe.rs).
    if argv.first().is_some_and(|a| a == "seccomp-probe") {
        return jail::probe::main(&argv[1..]);
    }
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rftpd: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match args.mode {
        Mode::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Mode::Version => {
            println!("rftpd {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Mode::CheckConfig => match load_config(args.config) {
            Ok((config, source)) => {
                if let Err(e) = master::Prepared::new(config.clone()) {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
                for w in config.warnings() {
                    eprintln!("warning: {w}");
                }
                match source {
                    master::ConfigSource::File(p) => {
                        println!("{}: configuration is valid", p.display())
                    }
                    master::ConfigSource::Defaults => {
                        println!("no {DEFAULT_CONFIG_PATH}; the embedded defaults are valid")
                    }
                }
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::from(1)
            }
        },
        Mode::MonitorProbe => {
            logging::init();
            match load_config(args.config) {
                Ok((config, _)) => {
                    // SECURITY: fail closed: an unreadable list is not an empty one (an empty
                    // deny list would let everyone in).
                    let list = match config.userlist_enable.then(|| config.load_user_list()) {
                        Some(Ok(list)) => list.join("\n"),
                        Some(Err(e)) => {
                            eprintln!(
                                "rftpd: userlist_file {}: {e}",
                                config.userlist_file.display()
                            );
                            return ExitCode::from(1);
                        }
                        None => String::new(),
                    };
                    let users = policy::UserList::new(&config, &list);
                    ExitCode::from(monitor::probe::run(&config, &users))
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    ExitCode::from(1)
                }
            }
        }
        Mode::Spawner => {
            logging::init();
            let text = std::env::var(master::SESSION_CONFIG_ENV).unwrap_or_default();
            if text.is_empty() {
                eprintln!("rftpd: `spawner` is started by the rftpd master only");
                return ExitCode::from(2);
            }
            match Config::parse(&text, "<from the master>") {
                Ok(config) => ExitCode::from(spawner::run(
                    config,
                    std::env::var(master::SESSION_USERLIST_ENV).unwrap_or_default(),
                    std::env::var(master::SESSION_BANNER_ENV).unwrap_or_default(),
                )),
                Err(errors) => {
                    tracing::error!("bad spawner config: {errors}");
                    ExitCode::from(1)
                }
            }
        }
        Mode::MetricsEndpoint => {
            logging::init();
            let text = std::env::var(master::SESSION_CONFIG_ENV).unwrap_or_default();
            if text.is_empty() {
                eprintln!("rftpd: `metrics-endpoint` is started by the rftpd master only");
                return ExitCode::from(2);
            }
            match Config::parse(&text, "<from the master>") {
                Ok(config) => ExitCode::from(metrics::run(&config)),
                Err(errors) => {
                    tracing::error!("bad metrics endpoint config: {errors}");
                    ExitCode::from(1)
                }
            }
        }
        Mode::Serve => {
            if let Err(e) = sys::close_inherited_fds_on_exec() {
                eprintln!("rftpd: cannot close the descriptors it inherited: {e}");
                return ExitCode::from(1);
            }
            let filter = logging::init();
            match load_config(args.config) {
                Ok((config, source)) => {
                    match &source {
                        master::ConfigSource::File(p) => {
                            tracing::info!(file = %p.display(), "rftpd {} starting", env!("CARGO_PKG_VERSION"))
                        }
                        master::ConfigSource::Defaults => tracing::info!(
                            "rftpd {} starting on the embedded defaults (no {DEFAULT_CONFIG_PATH})",
                            env!("CARGO_PKG_VERSION")
                        ),
                    }
                    for w in config.warnings() {
                        tracing::warn!("{w}");
                    }
                    match master::Prepared::new(config) {
                        Ok(prepared) => master::run(prepared, source, filter),
                        Err(e) => {
                            tracing::error!("{e}");
                            eprintln!("rftpd: configuration invalid, not starting");
                            ExitCode::from(1)
                        }
                    }
                }
                Err(errors) => {
                    for e in &errors.0 {
                        tracing::error!("{e}");
                    }
                    eprintln!("rftpd: configuration invalid, not starting");
                    ExitCode::from(1)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn command_lines_parse_as_documented() {
        assert_eq!(
            args(&[]).unwrap(),
            Args {
                mode: Mode::Serve,
                config: None
            }
        );
        assert_eq!(
            args(&["--check-config", "--config", "/x.toml"]).unwrap(),
            Args {
                mode: Mode::CheckConfig,
                config: Some("/x.toml".into())
            }
        );
        assert_eq!(args(&["spawner"]).unwrap().mode, Mode::Spawner);
        assert!(args(&["spawner", "--config", "x"]).is_err());
        assert!(args(&["--config"]).is_err());
        assert!(args(&["--bogus"]).is_err());
    }
}
