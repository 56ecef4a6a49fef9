"""Loading a stack's config: Pulumi.yaml defaults and ``Pulumi.<stack>.yaml`` (or the engine's config
inside a program), secret handling, and one readable line per validation error."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ValidationError

from infra.config.base import PROJECT, ConfigError
from infra.config.input import StackFileError, input_problems, load_stack_text, load_yaml_text
from infra.config.platform import PlatformConfig, _CrossProblems


def _camel_fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(loc: tuple) -> Optional[type[BaseModel]]:
    model: Any = PlatformConfig
    for part in loc:
        if isinstance(part, int):
            continue
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        f = fields.get(part)
        if f is None:
            return None
        ann = f.annotation
        inner = _unwrap_model(ann)
        if inner is None:
            return None
        model = inner
    return model


def _unwrap_model(ann: Any) -> Optional[type[BaseModel]]:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _loc_text(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _format_errors(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in {"function-after", "function-before"}))
        typ = err["type"]
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _CrossProblems):
            problems.extend(f"{PROJECT}:{k}: {m}" for k, m in ctx_err.problems)
            continue
        key = _loc_text(loc)
        if typ == "extra_forbidden":
            parent = _model_at(loc[:-1])
            hint = ""
            if parent is not None:
                close = difflib.get_close_matches(str(loc[-1]), _camel_fields(parent), n=1, cutoff=0.6)
                allowed = ", ".join(_camel_fields(parent))
                hint = f"; did you mean '{close[0]}'?" if close else f"; allowed keys: {allowed}"
            problems.append(f"{PROJECT}:{key}: unknown key{hint}")
            continue
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        elif typ == "literal_error":
            msg = f"{err['input']!r} is not allowed; use one of {err['ctx']['expected']}"
        elif typ in {"int_parsing", "int_type", "bool_parsing", "bool_type", "string_type", "list_type", "dict_type",
                     "model_type", "model_attributes_type", "int_from_float", "float_parsing"}:
            msg = f"{err['input']!r} has the wrong type ({msg.lower()})"
        elif typ == "missing":
            msg = "is required"
        problems.append(f"{PROJECT}:{key}: {msg}")
    # one line per problem, stable order
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def parse_config(raw: dict[str, Any], *, stack: str) -> PlatformConfig:
    """Validate a dict of this project's config (keys without the ``eks-ml-platform:`` prefix)."""
    data = dict(raw)
    if "stack" in data:
        # internal: the stack's name, from the stack file's name; a stack file that set it could
        # point the teardown of an ephemeral stack at another stack's resources
        raise ConfigError([f"{PROJECT}:stack: unknown key (the stack's name comes from Pulumi.<stack>.yaml, "
                           "it cannot be set in config)"])
    shape = input_problems(data, "")
    if shape:
        raise ConfigError([f"{PROJECT}:{k}: {m}" for k, m in shape])
    data["stack"] = stack
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None


def split_stack_config(flat: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``{"eks-ml-platform:x": .., "aws:region": ..}`` into (ours, others). Values may be JSON strings."""
    ours, others = {}, {}
    for key, value in flat.items():
        ns, _, name = key.partition(":")
        if ns == PROJECT and name:
            ours[name] = value
        else:
            others[key] = value
    return ours, others


def project_defaults(project_dir: Path) -> dict[str, Any]:
    """Defaults declared in Pulumi.yaml (`default:` of typed keys, `value:` of structured ones)."""
    try:
        doc = load_yaml_text((project_dir / "Pulumi.yaml").read_text(encoding="utf-8"), "Pulumi.yaml") or {}
    except StackFileError as exc:
        raise ConfigError([str(exc)]) from None
    out = {}
    for key, decl in (doc.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(decl, dict) and "default" in decl:
            out[full] = decl["default"]
        elif isinstance(decl, dict) and "value" in decl:
            out[full] = decl["value"]
        elif not isinstance(decl, dict):
            out[full] = decl
    return out


def read_stack_file(stack: str, project_dir: Path) -> dict[str, Any]:
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise ConfigError([f"stack {stack!r} does not exist: no {path.name} (known stacks: {', '.join(known) or 'none'})"])
    try:
        return load_stack_text(path.read_text(encoding="utf-8", errors="surrogateescape"), path.name)
    except StackFileError as exc:
        raise ConfigError([str(exc)]) from None


def merged_stack_config(stack: str, project_dir: Path) -> dict[str, Any]:
    """All config for a stack as Pulumi would see it: Pulumi.yaml defaults overlaid by the stack file."""
    merged = project_defaults(project_dir)
    merged.update(read_stack_file(stack, project_dir))
    return merged


SECRET_KEYS = ("grafanaAdminPassword",)  # read with pulumi.Config.get_secret by their component


def from_flat(flat: dict[str, Any], *, stack: str, engine_secrets: frozenset[str] = frozenset()) -> PlatformConfig:
    """Validate a stack's flat config. ``engine_secrets``: keys the engine marked secret (decrypted values)."""
    ours, others = split_stack_config(flat)
    problems = []
    aws_region = others.get("aws:region")
    if "region" not in ours and aws_region:
        ours["region"] = aws_region  # region follows the AWS provider's region when it is not set
    elif aws_region and isinstance(ours.get("region"), str) and ours["region"] != aws_region:
        problems.append(f"{PROJECT}:region: {ours['region']!r} differs from aws:region {aws_region!r}; the stack "
                        "would be deployed in one and described in the other: set one of them, or both alike")
    for key in SECRET_KEYS:
        value = ours.pop(key, None)
        if value is not None and not (isinstance(value, dict) and "secure" in value) \
                and f"{PROJECT}:{key}" not in engine_secrets:
            problems.append(f"{PROJECT}:{key}: must be a secret; set it with `pulumi config set --secret {key}`")
    for key, value in list(ours.items()):
        if isinstance(value, dict) and "secure" in value:
            problems.append(f"{PROJECT}:{key}: secrets are not accepted for this key")
        elif isinstance(value, str) and value[:1] in "[{":
            import json

            try:
                ours[key] = json.loads(value)  # the engine hands structured values over as JSON text
            except (ValueError, RecursionError):
                pass  # not JSON: the key's own validator names what it expects
    try:
        cfg = parse_config(ours, stack=stack)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    if problems:
        raise ConfigError(problems)
    return cfg


def load_stack_config(stack: str, project_dir: Path) -> PlatformConfig:
    """Read and validate ``Pulumi.<stack>.yaml`` (offline; used by render, cost, teardown)."""
    return from_flat(merged_stack_config(stack, project_dir), stack=stack)


def load_from_pulumi() -> PlatformConfig:
    """Inside a Pulumi program: validate the stack's whole config as the engine passed it."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env

    from pulumi.runtime.config import is_config_secret

    flat = dict(get_config_env())
    flat.update(CONFIG.get())
    secrets = frozenset(k for k in flat if is_config_secret(k))
    return from_flat(flat, stack=pulumi.get_stack(), engine_secrets=secrets)
