//! `python/cormorant/_settings.py`, the Python API's typed keywords for
//! every setting, is generated from [`ServerConfig`]'s arguments: a test
//! checks that the file is current (`CORMORANT_BLESS=1` rewrites it), so a
//! new setting needs no Python edit beyond an alias row for another
//! server's name.

use std::any::TypeId;
use std::time::Duration;

use clap::Args;

use crate::config::{ResponseHeader, ServerConfig};

fn is_duration(arg: &clap::Arg) -> bool {
    arg.get_value_parser().type_id() == TypeId::of::<Duration>()
}

/// A duration with a default whose help says what 0 means ("0: none").
fn zero_is_off(arg: &clap::Arg) -> bool {
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    !arg.get_default_values().is_empty() && help.contains("(0: ")
}

/// Python types the flag's parser does not show: forms only the Python API
/// takes, which `cormorant._config` converts before the extension reads
/// the value (uvicorn's `log_config` dict is written to a file), and
/// values a parser reads from a word (`workers="auto"`).
const PYTHON_FORMS: [(&str, &str); 2] = [
    ("log_config", "Union[_Path, Dict[str, Any], None]"),
    ("workers", "Union[int, str]"),
];

/// The Python type of a setting's keyword.
fn python_type(arg: &clap::Arg) -> String {
    if let Some((_, ty)) = PYTHON_FORMS.iter().find(|(id, _)| arg.get_id() == *id) {
        return (*ty).to_owned();
    }
    let parser = arg.get_value_parser().type_id();
    let value_name = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|n| n.as_str())
        .unwrap_or_default();
    let is = |t: TypeId| parser == t;
    let list = matches!(arg.get_action(), clap::ArgAction::Append);
    let flag = matches!(
        arg.get_action(),
        clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
    );
    let base = if flag {
        return "bool".to_owned();
    } else if is(TypeId::of::<bool>()) {
        "bool".to_owned()
    } else if is_duration(arg) {
        if zero_is_off(arg) {
            // None turns it off too (a duration reads null as 0).
            return "Optional[_Seconds]".to_owned();
        }
        "_Seconds".to_owned()
    } else if is(TypeId::of::<ResponseHeader>()) {
        "_Header".to_owned()
    } else if is(TypeId::of::<String>()) {
        match value_name {
            "FILE" | "DIR" | "PATH" => "_Path",
            "LIST" => "Union[str, Sequence[str]]",
            _ => "str",
        }
        .to_owned()
    } else if !arg.get_possible_values().is_empty() {
        // An enum: its names, and the numbers or booleans it also reads.
        let spellings: Vec<String> = arg
            .get_possible_values()
            .iter()
            .flat_map(|v| {
                v.get_name_and_aliases()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut types = vec!["str"];
        if spellings.iter().any(|s| s.parse::<i64>().is_ok()) {
            types.push("int");
        }
        if spellings.iter().any(|s| s == "true") {
            types.push("bool");
        }
        match types.len() {
            1 => "str".to_owned(),
            _ => format!("Union[{}]", types.join(", ")),
        }
    } else {
        "int".to_owned()
    };
    if list {
        return match base.as_str() {
            "str" | "_Path" => "Optional[_Paths]".to_owned(),
            other => format!("Optional[Iterable[{other}]]"),
        };
    }
    if arg.get_default_values().is_empty() {
        format!("Optional[{base}]")
    } else {
        base
    }
}

/// The text of `_settings.py`.
fn render() -> String {
    let command = ServerConfig::augment_args(clap::Command::new("cormorant"));
    let mut out = String::from(
        r#""""The keywords of every setting, typed: generated from the extension's
`ServerConfig` (native/python/src/settings_stub.rs). Do not edit: run
`CORMORANT_BLESS=1 cargo test -p cormorant settings_stub`.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, TypedDict, Union

_Path = Union[str, "os.PathLike[str]"]
_Paths = Union[_Path, Sequence[_Path]]
_Seconds = Union[int, float]
_Header = Union[str, Tuple[str, str]]


class Settings(TypedDict, total=False):
    """One keyword per setting, named as the setting (`--loop` is `loop`)."""

"#,
    );
    let mut off = Vec::new();
    for arg in command.get_arguments() {
        let ty = python_type(arg);
        if is_duration(arg) && zero_is_off(arg) {
            off.push(format!("    {:?},\n", arg.get_id().as_str()));
        }
        out.push_str(&format!("    {}: {ty}\n", arg.get_id()));
    }
    out.push_str(
        "\n\n# Durations for which None means 0, off (`ws_ping_interval=None`: no pings).\n",
    );
    out.push_str("NONE_IS_OFF = (\n");
    out.extend(off);
    out.push_str(")\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn settings_py_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../python/cormorant/_settings.py"
        );
        let want = super::render();
        if std::env::var_os("CORMORANT_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "python/cormorant/_settings.py is stale: rerun with CORMORANT_BLESS=1"
        );
    }
}
