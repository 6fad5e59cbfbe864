"""Designs on disk: configs read from and written to TOML or JSON, validated down to their shapes;
and the files that ship with the package (the reference design and the default search space).

The shipped files live in the repository's `search_spaces/` folder, the one copy a user reads and
edits; the package reaches them through the `nas/search_spaces` link, so an installed `nas` carries
the same files as package data.
"""

from __future__ import annotations

import json
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import tomli_w

from nas.design.config import ArchConfig, parse_dataclass
from nas.design.geometry import trace
from nas.errors import ConfigError

SHIPPED = files("nas") / "search_spaces"
REFERENCE = Path(str(SHIPPED / "reference.toml"))
DEFAULT_SPACE = Path(str(SHIPPED / "c1c2c3c4o.toml"))
FAST_SPACE = Path(str(SHIPPED / "c1c2c3c4o-fast.toml"))  # designs fast on a CPU: equal time's space


def read_table(path: str | Path, what: str = "config") -> dict[str, Any]:
    """A .toml or .json file as a plain dict; ConfigError (one line) when it cannot be read."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(str(path), "<file>", f"is a folder; give a .toml or .json {what} file")
    if not path.is_file():
        raise ConfigError(str(path), "<file>", f"no such {what} file")
    if path.suffix not in (".toml", ".json"):
        raise ConfigError(str(path), "<file>", "expected a .toml or .json file")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(str(path), "<file>", f"not valid {path.suffix[1:].upper()}: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), "<file>", f"cannot be read: {err}") from None
    if not isinstance(data, dict):  # JSON allows a list or a bare value at the top
        raise ConfigError(str(path), "<file>", f"holds a {type(data).__name__}; a {what} is a table of keys")
    if not data:
        raise ConfigError(str(path), "<file>", f"is empty; a {what} is a table of keys")
    return data


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> ArchConfig:
    """Validate a plain dict and build the config; raises ConfigError naming the key at fault."""
    config = parse_dataclass(ArchConfig, data, "", source)
    trace(config, source)  # shapes that cannot work (maps below 1×1, mismatched shortcuts) fail here
    return config


def load_config(path: str | Path) -> ArchConfig:
    """Read a config from a .toml or .json file."""
    return config_from_dict(read_table(path), str(path))


def dumps_config(config: ArchConfig, fmt: Literal["toml", "json"]) -> str:
    """The config as TOML or JSON text."""
    data = config.to_dict()
    return tomli_w.dumps(data) if fmt == "toml" else json.dumps(data, indent=2) + "\n"


def save_config(config: ArchConfig, path: str | Path) -> Path:
    """Write a config to .toml or .json (by suffix)."""
    path = Path(path)
    fmt = "json" if path.suffix == ".json" else "toml"
    path.write_text(dumps_config(config, fmt))
    return path


def resolve_design(name_or_path: str) -> Path:
    """A config path, or the name of a shipped design ("reference")."""
    shipped = Path(str(SHIPPED / f"{name_or_path}.toml"))
    if not Path(name_or_path).exists() and "/" not in name_or_path and shipped.is_file():
        return shipped
    return Path(name_or_path)
