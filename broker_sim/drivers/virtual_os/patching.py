"""Swap a set of module-level objects everywhere they are bound, and put them back.

Patching ``time.sleep`` is not enough: py-amqp does ``from time import monotonic`` and kombu
``from time import sleep, time``, so the real function is bound under other names in other
modules. freezegun walks ``sys.modules`` for exactly this; so does :class:`Swap`: every
module attribute that *is* one of the real objects is replaced by its stand-in, and exactly
those bindings are restored afterwards (a binding the program changed meanwhile is left as
the program left it).

A full walk of ~900 modules costs ~15 ms; modules already walked are remembered with the
names they bind, so a run walks only the modules imported since the last one.
"""

from __future__ import annotations

import sys
from types import ModuleType

# module name -> (module object, {attribute: id of the real object}) of earlier walks
_seen: dict[str, tuple[ModuleType, dict[str, int]]] = {}
# the walked modules that bind a real object, valid while sys.modules has _index_size entries
# (a run between imports, the common case, visits only these few dozen of ~1,000 modules)
_index: list[tuple[ModuleType, dict[str, int]]] = []
_index_size = -1


class Swap:
    """``install()`` the stand-ins, ``restore()`` the real objects (idempotent)."""

    def __init__(self, replacements: dict[int, tuple[object, object]], skip: tuple = ()) -> None:
        self.replacements = replacements  # id(real) -> (real, stand-in)
        self.skip = skip  # module name prefixes never touched (the layer itself)
        self.done: list[tuple[ModuleType | type, str, object]] = []
        self._modules_before: set[str] = set()
        self._reals: dict[int, object] | None = None  # id(stand-in) -> real, made once

    def install(self) -> None:
        self._modules_before = set(sys.modules)
        if len(sys.modules) == _index_size:
            pairs = _index
        else:
            pairs = self._walk()
        targets = self.replacements
        for module, bound in pairs:
            for attr, real_id in bound.items():
                stand_in = targets[real_id][1]
                if module.__dict__.get(attr) is targets[real_id][0]:
                    setattr(module, attr, stand_in)
                    self.done.append((module, attr, stand_in))

    def _walk(self) -> list[tuple[ModuleType, dict[str, int]]]:
        """Every module in sys.modules with the names it binds; rebuilds the index."""
        global _index, _index_size
        targets, seen, pairs = self.replacements, _seen, []
        for name, module in list(sys.modules.items()):
            cached = seen.get(name)  # inline: most modules were walked and bind nothing
            if cached is not None and cached[0] is module:
                bound = cached[1]
                if not bound:
                    continue
            else:
                bound = self._bindings(name, module, targets)
            if bound:
                pairs.append((module, bound))
        _index, _index_size = pairs, len(sys.modules)
        return pairs

    def _bindings(self, name: str, module, targets) -> dict[str, int]:
        cached = _seen.get(name)
        if cached is not None and cached[0] is module:
            return cached[1]
        namespace = getattr(module, "__dict__", None)
        if namespace is None or name.startswith(self.skip):
            bound = {}
        else:
            bound = {a: id(v) for a, v in list(namespace.items()) if id(v) in targets}
        _seen[name] = (module, bound)
        return bound

    def attribute(self, owner: type, attr: str, stand_in) -> None:
        """Also swap one class attribute (a method the walk cannot see); an inherited one is
        shadowed, and the shadow removed again on restore."""
        real = owner.__dict__.get(attr, _INHERITED)
        setattr(owner, attr, stand_in)
        self.done.append((owner, attr, (stand_in, real)))

    def restore(self) -> None:
        while self.done:
            owner, attr, stand_in = self.done.pop()
            if isinstance(stand_in, tuple):  # a class attribute: (stand-in, real)
                stand_in, real = stand_in
            else:
                real = self._real_of(stand_in)
            if owner.__dict__.get(attr) is stand_in:
                if real is _INHERITED:
                    delattr(owner, attr)
                else:
                    setattr(owner, attr, real)
        self._unbind_late_imports()

    def _real_of(self, stand_in):
        reals = self._reals
        if reals is None:
            reals = self._reals = {id(s): r for r, s in self.replacements.values()}
        return reals[id(stand_in)]

    def _unbind_late_imports(self) -> None:
        """A module imported while the layer was in force bound stand-ins (``from time import
        sleep``): give it the real objects, as if it had been imported before."""
        global _index_size
        stand_ins = {id(s): r for r, s in self.replacements.values()}
        if not stand_ins:
            return
        for name in set(sys.modules) - self._modules_before:
            module = sys.modules.get(name)
            namespace = getattr(module, "__dict__", None)
            if namespace is None or name.startswith(self.skip):
                continue
            for attr, value in list(namespace.items()):
                if id(value) in stand_ins:
                    setattr(module, attr, stand_ins[id(value)])
            _seen.pop(name, None)
            _index_size = -1  # walk it again next time: it binds the real objects now


_INHERITED = object()  # marks a class attribute that was inherited, not set on the class
