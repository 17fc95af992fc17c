"""Tiny napari-style event system for the Qt-free session model.

``model.events.<name>.connect(callback)``; emitting calls every callback with an :class:`Event`
whose attributes are the keyword arguments of the emission (``event.value``, ``event.pane``...).
This mirrors napari's ``EmitterGroup`` (STYLE_ANCHORS §1) without importing Qt or pydantic, so the
model stays testable headless and the views only subscribe and write user intent back.
"""
from __future__ import annotations

from typing import Any, Callable

Callback = Callable[["Event"], Any]


class Event:
    """One emission: ``type`` is the emitter name, other attributes are the payload."""

    def __init__(self, type: str, **kwargs: Any) -> None:
        self.type = type
        self.__dict__.update(kwargs)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Event({self.__dict__})"


class EventEmitter:
    """A list of callbacks fired in connection order.

    Blocking (``with emitter.blocker():``) suppresses emissions, used when the model is restored
    in bulk and one summary event is sent afterwards.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callback] = []
        self._blocked = 0

    def connect(self, callback: Callback) -> Callback:
        """Subscribe ``callback``; returns it so it can be used as a decorator."""
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callback | None = None) -> None:
        """Remove one callback, or all of them when ``callback`` is None."""
        if callback is None:
            self._callbacks.clear()
        elif callback in self._callbacks:
            self._callbacks.remove(callback)

    @property
    def callbacks(self) -> tuple[Callback, ...]:
        return tuple(self._callbacks)

    def blocker(self) -> "_Blocker":
        return _Blocker(self)

    def __call__(self, **kwargs: Any) -> Event:
        event = Event(self.name, **kwargs)
        if not self._blocked:
            for cb in list(self._callbacks):
                cb(event)
        return event


class _Blocker:
    def __init__(self, emitter: EventEmitter) -> None:
        self._emitter = emitter

    def __enter__(self) -> None:
        self._emitter._blocked += 1

    def __exit__(self, *exc: object) -> None:
        self._emitter._blocked -= 1


class EmitterGroup:
    """Named emitters as attributes: ``EmitterGroup("zoom", "center").zoom.connect(...)``."""

    def __init__(self, *names: str) -> None:
        self._names: list[str] = []
        for n in names:
            self.add(n)

    def add(self, name: str) -> EventEmitter:
        em = EventEmitter(name)
        setattr(self, name, em)
        self._names.append(name)
        return em

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._names)

    def disconnect_all(self) -> None:
        for n in self._names:
            getattr(self, n).disconnect()


class EventedModel:
    """Attribute container that emits ``events.<field>(value=...)`` when a field changes.

    Subclasses declare ``_defaults: dict[str, Any]`` (field name → default).  Setting a field to an
    equal value emits nothing, which breaks view ↔ model feedback loops (napari's EventedModel
    behaves the same way).
    """

    _defaults: dict[str, Any] = {}

    def __init__(self, **values: Any) -> None:
        object.__setattr__(self, "events", EmitterGroup(*self._defaults))
        for k, v in self._defaults.items():
            object.__setattr__(self, k, _copy_default(v))
        for k, v in values.items():
            if k not in self._defaults:
                raise TypeError(f"{type(self).__name__} has no field '{k}'")
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._defaults:
            old = getattr(self, name)
            object.__setattr__(self, name, value)
            if not _equal(old, value):
                getattr(self.events, name)(value=value, old=old)
        else:
            object.__setattr__(self, name, value)

    def update(self, values: dict[str, Any]) -> None:
        """Set several known fields (unknown keys are ignored: sessions from newer versions)."""
        for k, v in values.items():
            if k in self._defaults:
                setattr(self, k, v)

    def dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._defaults}


def _copy_default(v: Any) -> Any:
    if isinstance(v, (list, dict, set)):
        return type(v)(v)
    return v


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # numpy arrays and friends: identity is the only cheap answer
        return a is b
