"""Turning Keras objects into `{class_name, config}` dictionaries and back.

Both Keras generations write `{"class_name": ..., "config": ...}`; Keras 3 and late tf.keras 2 add `module` and
`registered_name`. Reading accepts all of these; writing produces Keras 3's form and `exporters` adapts it per target.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

from core.errors import ConfigError

_GLOBAL_CUSTOM_OBJECTS: dict[str, Any] = {}
_scope_stack: list[dict[str, Any]] = []


def register_keras_serializable(package: str = "Custom", name: str | None = None):
    """Decorator that makes a custom class or function loadable by name, as `keras.saving.register_keras_serializable`."""

    def deco(obj):
        key = name or obj.__name__
        _GLOBAL_CUSTOM_OBJECTS[key] = obj
        _GLOBAL_CUSTOM_OBJECTS[f"{package}>{key}"] = obj
        return obj

    return deco


@contextlib.contextmanager
def custom_object_scope(objects: dict[str, Any] | None):
    _scope_stack.append(dict(objects or {}))
    try:
        yield
    finally:
        _scope_stack.pop()


_safe_mode_stack: list[bool] = []


@contextlib.contextmanager
def safe_mode_scope(safe_mode: bool = True):
    """Within this scope, configs that carry code (Lambda bytecode) load only when `safe_mode` is False.

    Loaders (`load_model(..., safe_mode=False)`, `model_from_json`) wrap deserialization in it; outside any scope
    the engine is safe: code from a config is refused.
    """
    _safe_mode_stack.append(bool(safe_mode))
    try:
        yield
    finally:
        _safe_mode_stack.pop()


def in_safe_mode() -> bool:
    return _safe_mode_stack[-1] if _safe_mode_stack else True


def custom_objects(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    out = dict(_GLOBAL_CUSTOM_OBJECTS)
    for scope in _scope_stack:
        out.update(scope)
    out.update(extra or {})
    return out


def serialize(obj, module: str) -> dict | None:
    if obj is None:
        return None
    return {"module": module, "class_name": type(obj).__name__, "config": obj.get_config(), "registered_name": None}


def lookup(class_name: str, registry: dict[str, Any], kind: str, extra: dict[str, Any] | None = None):
    objs = custom_objects(extra)
    for key in (class_name, class_name.split(">")[-1]):
        if key in objs:
            return objs[key]
        if key in registry:
            return registry[key]
    known = ", ".join(sorted(k for k in registry if k[:1].isupper())[:40])
    raise ConfigError(f"Unknown {kind} '{class_name}'. Known {kind}s: {known}. A custom {kind} must be passed in "
                      f"custom_objects or registered with register_keras_serializable.")


def get_object(identifier, registry: dict[str, Any], kind: str, aliases: dict[str, str] | None = None,
               base: type | None = None, extra: dict[str, Any] | None = None):
    """Resolve a name, a `{class_name, config}` dict, a class, or an instance into an instance (or None)."""
    if identifier is None:
        return None
    if base is not None and isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        key = (aliases or {}).get(identifier.lower(), identifier)
        cls = lookup(key, registry, kind, extra)
        return cls() if isinstance(cls, type) else cls
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ConfigError(f"A {kind} config needs 'class_name', got keys {sorted(identifier)}.")
        name = identifier["class_name"]
        key = (aliases or {}).get(name.lower(), name) if name not in registry else name
        cls = lookup(key, registry, kind, extra)
        cfg = identifier.get("config") or {}
        try:
            return cls.from_config(cfg) if hasattr(cls, "from_config") else cls(**cfg)
        except TypeError as exc:
            raise ConfigError(f"Invalid config for {kind} '{name}': {exc}") from exc
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ConfigError(f"Could not interpret {kind} identifier: {identifier!r}.")


def camel_registry(*classes: type) -> dict[str, type]:
    return {c.__name__: c for c in classes}


Identifier = Any
Factory = Callable[..., Any]
