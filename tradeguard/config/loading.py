"""Reading a config: YAML, ``${VAR}`` substitution, validation, and errors an operator can act on.

Every error is reported with its key path, all at once, and a misspelt key names the closest
valid one; warnings flag a valid config that is probably not what the operator wants.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tradeguard.config.sections import Config
from tradeguard.errors import ConfigError
from tradeguard.model import Role

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(node: Any, path: str, env: dict[str, str], errors: list[str]) -> Any:
    """Replace ``${VAR}`` in every string; a missing variable is an error naming it and its key."""
    if isinstance(node, dict):
        return {
            k: _expand_env(v, f"{path}.{k}" if path else str(k), env, errors)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_expand_env(v, f"{path}[{i}]", env, errors) for i, v in enumerate(node)]
    if isinstance(node, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                errors.append(f"{path}: environment variable {name} is not set")
                return ""
            return env[name]

        return _ENV_REF.sub(substitute, node)
    return node


def _raw_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    for key in loc:
        if not isinstance(data, dict | list):
            return None
        try:
            data = data[key]  # type: ignore[index]  # a wrong key type is caught below
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _format_errors(exc: ValidationError, raw: Any) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # A shorthand trigger (`strategy_drawdown: 0.05`) reports at its own key, not `.limit`.
        if loc and loc[-1] == "limit" and not isinstance(_raw_at(raw, loc[:-1]), dict):
            loc = loc[:-1]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; unknown keys are not ignored)"
            near = _known_keys_near(loc)
            if near:
                message += f"; did you mean {near}?"
        key = ".".join(str(p) for p in loc) or "(top level)"
        out.append(f"{key}: {message}")
    return out


def _known_keys_near(loc: tuple[int | str, ...]) -> str | None:
    """The closest valid key at the same place, for a misspelt one."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = None if field is None else field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return close[0] if close else None


def config_warnings(config: Config) -> list[str]:
    """Valid, but probably not what the operator wants."""
    warnings = []
    if not config.users:
        warnings.append(
            "no users: nobody can halt by hand, and no halt can be lifted; "
            "add `users: {name: role}`"
        )
    elif not any(r >= Role.RISK_MANAGER for r in config.users.values()):
        warnings.append("no risk_manager or admin: a portfolio halt can never be lifted")
    elif sum(r >= Role.RISK_MANAGER for r in config.users.values()) < 2:
        warnings.append(
            "fewer than two risk_manager/admin users: an emergency can never be "
            "lifted (it needs two different people)"
        )
    routed = {c for channels in config.alerts.routing.values() for c in channels}
    if not config.alerts.configured & routed:
        warnings.append("alerts: no channel is configured: halts will alert nobody")
    return warnings


def parse_config(
    data: Any, *, base_dir: Path | None = None, env: dict[str, str] | None = None
) -> Config:
    """Validate an already-parsed YAML document; relative state paths resolve against base_dir."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["(top level): must be a mapping of sections"])
    errors: list[str] = []
    expanded = _expand_env(data, "", dict(os.environ) if env is None else env, errors)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        errors.extend(_format_errors(exc, expanded))
        raise ConfigError(errors) from None
    if errors:
        raise ConfigError(errors)
    if base_dir is not None and not config.state.path.is_absolute():
        state = config.state.model_copy(update={"path": base_dir / config.state.path})
        config = config.model_copy(update={"state": state})
    return config


def load_config(path: str | os.PathLike[str], *, env: dict[str, str] | None = None) -> Config:
    """Read and validate a YAML file. The state DB defaults to ``tradeguard.db`` beside it."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}: not valid YAML: {exc}"]) from exc
    return parse_config(data, base_dir=file.resolve().parent, env=env)
