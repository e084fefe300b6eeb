//! The `cormorant` command line: clap, derived from [`ServerConfig`]. Every
//! flag also reads the environment variable `CORMORANT_` + its name, and
//! the settings file's key of the same name.

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

use crate::config::ServerConfig;

/// Cormorant: a fast ASGI server for Python, written in Rust.
#[derive(Debug, Parser)]
#[command(
    name = "cormorant",
    version,
    about,
    max_term_width = 100,
    args_override_self = true
)]
pub(crate) struct Cli {
    /// The ASGI application, as `module:attribute`.
    #[arg(value_name = "APP")]
    app: String,
    /// Read settings from this TOML file (default: `cormorant.toml`, or
    /// `[tool.cormorant]` in `pyproject.toml`, in the working directory).
    /// Keys are the flags' names; flags and environment variables win.
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    #[command(flatten)]
    settings: ServerConfig,
    /// Check the configuration (flags, environment, settings file) and
    /// exit: 0 when it is valid, else one line and 2. The app is not
    /// imported.
    #[arg(long)]
    pub(crate) check_config: bool,
    /// Print the resolved configuration as settings-file lines, each with
    /// where its value came from (command line, environment, file,
    /// default), and exit. The app is not imported.
    #[arg(long)]
    pub(crate) print_config: bool,
}

/// Flags of the command itself, not settings: no environment variable.
const NOT_SETTINGS: [&str; 4] = ["help", "version", "check_config", "print_config"];

/// Other spellings of a flag and value: granian's name for
/// `--ssl-cert-reqs required`. (uvicorn's `--no-X` forms are read for
/// every boolean `--X` flag, see [`respell`].)
const SPELLINGS: [(&str, &str); 1] = [("--ssl-client-verify", "--ssl-cert-reqs=required")];

/// The environment variable of the argument `id`.
fn env_name(id: &str) -> String {
    format!("CORMORANT_{}", id.to_ascii_uppercase())
}

/// The command, with each setting's environment variable.
pub(crate) fn command() -> clap::Command {
    Cli::command().mut_args(|a| {
        if NOT_SETTINGS.contains(&a.get_id().as_str()) {
            return a;
        }
        let env = env_name(a.get_id().as_str());
        a.env(env)
    })
}

/// The boolean flags that take an optional value (`--access-log`,
/// `--access-log=false`): each also has a `--no-` form.
fn negatable(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter(|a| {
            a.get_num_args().is_some_and(|n| n.min_values() == 0)
                && a.get_value_names().is_some_and(|v| v == ["BOOL"])
        })
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect()
}

/// `argv` with the other spellings of flags written as the one clap knows:
/// `--no-X` is `--X=false` for each boolean flag `--X`.
fn respell(command: &clap::Command, argv: impl IntoIterator<Item = String>) -> Vec<String> {
    let negatable = negatable(command);
    let mut out = Vec::new();
    let mut rest = false;
    for arg in argv {
        if rest || arg == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let spelt = arg
            .strip_prefix("--no-")
            .filter(|flag| negatable.iter().any(|n| n == flag))
            .map(|flag| format!("--{flag}=false"))
            .or_else(|| {
                SPELLINGS
                    .iter()
                    .find(|(other, _)| *other == arg)
                    .map(|(_, ours)| (*ours).to_owned())
            });
        out.push(spelt.unwrap_or(arg));
    }
    out
}

/// A settings-file key or `CORMORANT_NO_X` variable in its `--no-` form,
/// as the flag it negates: `("server-header", "false")` for
/// `no-server-header = true`.
pub(crate) fn positive_form(
    command: &clap::Command,
    key: &str,
    value: &str,
) -> Option<(String, String)> {
    let flag = key.strip_prefix("no-")?;
    if !negatable(command).iter().any(|n| n == flag) {
        return None;
    }
    let on = !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "false" | "0" | "no" | "off" | ""
    );
    Some((flag.to_owned(), (!on).to_string()))
}

/// The environment variable of the setting named `key` in a settings file
/// (a flag's name, `port`, or its field's, `access_log`).
pub(crate) fn setting_env<'c>(
    command: &'c clap::Command,
    key: &str,
) -> Option<&'c std::ffi::OsStr> {
    let arg = command
        .get_arguments()
        .find(|a| a.get_long() == Some(key) || a.get_id().as_str().replace('_', "-") == key)?;
    arg.get_env()
}

/// Parses the command line (without the program name).
pub(crate) fn parse(argv: Vec<String>) -> Result<(Cli, ArgMatches), clap::Error> {
    let command = command();
    let args = std::iter::once("cormorant".to_owned()).chain(argv);
    let matches = command
        .clone()
        .try_get_matches_from(respell(&command, args))?;
    let cli = Cli::from_arg_matches(&matches)?;
    Ok((cli, matches))
}

/// Where a setting's value came from.
fn source_of(field: &str, matches: &ArgMatches, from_file: &[(String, String)]) -> String {
    use clap::parser::ValueSource;
    let id = match field {
        "target" => "app",
        f => f,
    };
    let env = env_name(id);
    match matches.try_get_raw(id).map(|_| matches.value_source(id)) {
        Ok(Some(ValueSource::CommandLine)) => "command line".to_owned(),
        Ok(Some(ValueSource::EnvVariable)) => match from_file.iter().find(|(e, _)| *e == env) {
            Some((_, path)) => format!("file {path}"),
            None => format!("environment {env}"),
        },
        _ => "default".to_owned(),
    }
}

/// The configuration as settings-file lines (`key = value`), sorted, each
/// with the source of its value; unset options as comments.
pub(crate) fn describe(
    config: &ServerConfig,
    matches: &ArgMatches,
    from_file: &[(String, String)],
) -> String {
    let serde_json::Value::Object(fields) = serde_json::to_value(config).unwrap_or_default() else {
        return String::new();
    };
    let mut out = String::new();
    for (key, value) in fields {
        let source = source_of(&key, matches, from_file);
        // The settings file's names: the flags'.
        let key = match key.as_str() {
            "target" => "app".to_owned(),
            k => k.replace('_', "-"),
        };
        if key.contains("password") && !value.is_null() {
            out.push_str(&format!("{key} = \"***\"  # {source}\n"));
        } else if value.is_null() {
            out.push_str(&format!("# {key} is not set  ({source})\n"));
        } else {
            out.push_str(&format!("{key} = {value}  # {source}\n"));
        }
    }
    out
}

impl Cli {
    /// The configuration these flags describe.
    pub(crate) fn into_config(self) -> ServerConfig {
        ServerConfig {
            target: Some(self.app),
            ..self.settings
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientAuth, HttpVersions};

    fn config(args: &[&str]) -> Result<ServerConfig, String> {
        let argv = std::iter::once("app:app").chain(args.iter().copied());
        parse(argv.map(str::to_owned).collect())
            .map(|(cli, _)| cli.into_config())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_fill_the_typed_config() {
        let c = config(&[
            "--http",
            "1",
            "--http",
            "2",
            "--timeout-keep-alive",
            "1.5",
            "--header",
            "x-a:1",
            "--header",
            "x-b:2",
        ])
        .unwrap();
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.target.as_deref(), Some("app:app"));
        assert_eq!(c.http, HttpVersions::Http2);
        assert_eq!(c.timeout_keep_alive, std::time::Duration::from_millis(1500));
        assert_eq!(c.headers[0].to_string(), "x-a:1");
        assert!(config(&["--timeout-keep-alive", "-1"]).is_err());
        assert!(config(&["--header", "bad header"]).is_err());
        assert!(config(&["--http", "3"]).is_err());
    }

    #[test]
    fn no_forms_and_other_spellings() {
        let c = config(&[
            "--no-server-header",
            "--no-date-header",
            "--no-proxy-headers",
        ])
        .unwrap();
        assert!(!c.server_header && !c.date_header && !c.proxy_headers);
        assert!(config(&["--access-log"]).unwrap().access_log);
        // The last of a flag and its `--no-` form wins.
        assert!(
            !config(&["--access-log", "--no-access-log"])
                .unwrap()
                .access_log
        );
        assert!(
            config(&["--no-access-log", "--access-log"])
                .unwrap()
                .access_log
        );
        assert_eq!(
            config(&["--no-use-colors"]).unwrap().use_colors,
            Some(false)
        );
        assert_eq!(config(&["--use-colors"]).unwrap().use_colors, Some(true));
        assert_eq!(config(&[]).unwrap().use_colors, None);
        let verify = config(&["--ssl-client-verify"]).unwrap();
        assert_eq!(verify.ssl_cert_reqs, ClientAuth::Required);
        assert_eq!(
            config(&["--ssl-cert-reqs", "1"]).unwrap().ssl_cert_reqs,
            ClientAuth::Optional
        );
        // Only boolean flags have a `--no-` form.
        assert!(config(&["--no-port"]).is_err());
    }

    #[test]
    fn every_setting_has_its_environment_variable() {
        let command = command();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let env = arg.get_env().and_then(|e| e.to_str());
            if NOT_SETTINGS.contains(&id) {
                assert_eq!(env, None, "{id}");
            } else {
                assert_eq!(env, Some(env_name(id).as_str()), "{id}");
            }
        }
        let env = |id: &str| {
            let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap();
            arg.get_env().unwrap().to_str().unwrap().to_owned()
        };
        assert_eq!(env("loop"), "CORMORANT_LOOP");
        assert_eq!(env("headers"), "CORMORANT_HEADERS");
        assert_eq!(env("app"), "CORMORANT_APP");
    }

    #[test]
    fn negated_file_keys() {
        let command = command();
        assert_eq!(
            positive_form(&command, "no-server-header", "true"),
            Some(("server-header".to_owned(), "false".to_owned()))
        );
        assert_eq!(
            positive_form(&command, "no-access-log", "false"),
            Some(("access-log".to_owned(), "true".to_owned()))
        );
        assert_eq!(positive_form(&command, "no-port", "true"), None);
        assert_eq!(positive_form(&command, "server-header", "true"), None);
    }
}
