"""Querysets compiled to SQL once, for the queries every batch of socket connects runs.

Building and compiling a queryset is most of what a small query costs the database
thread: the nav badge's query (five subqueries) takes about 2.7 ms to build and compile
and 0.3 ms to run. A batch of connects (``realtime.batching``) runs a dozen such queries
that differ only in the ids they are about, so a storm of reconnects spent most of its
database-thread time compiling the same SQL again.

``Compiled(build)`` calls ``build`` with stand-in id lists (integers or strings, as the
real ones), compiles the queryset once
per shape and keeps its SQL; a call then runs that SQL with the real ids in place of the
stand-ins and reads the rows with the queryset's own iterable (model instances, values
lists, field converters), as Django would. A shape is the length of each list, rounded
up to a power of two (a list is padded with its last id, which leaves an ``IN`` list's
meaning unchanged), and the keyword arguments, which are passed to ``build`` as they
are. An empty list, or a queryset whose stand-ins can't all be found among its SQL
parameters, goes through the ORM as usual.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import QuerySet

# Stand-in ids: integers no table uses as a key (strings: with a control character no key has).
_STAND_IN = -(10**15)
_LIST_STRIDE = 10**6


@dataclass
class _Shape:
    queryset: QuerySet
    compiler: Any  # SQLCompiler after as_sql(): its select, klass_info, col_count are set
    sql: str
    params: tuple
    # (position in params, list, index in that list or None: the whole list)
    slots: list[tuple[int, int, int | None]]


class _Query:
    """The queryset's query, answering ``get_compiler`` with a ready compiler."""

    def __init__(self, query: Any, compiler: Any) -> None:
        self._query = query
        self._compiler = compiler

    def get_compiler(self, *args: Any, **kwargs: Any) -> Any:
        return self._compiler

    def __getattr__(self, name: str) -> Any:
        return getattr(self._query, name)


class _QuerySet:
    """What a queryset's iterable class reads from it, with the ready query."""

    def __init__(self, queryset: QuerySet, query: _Query) -> None:
        self._queryset = queryset
        self.query = query

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queryset, name)


_PLACEHOLDER = re.compile(r"%%|%s")


def _as_arrays(sql: str, params: list, slots: list) -> tuple[str, list, list]:
    """PostgreSQL: each stand-in ``IN (%s, ..., %s)`` becomes ``= ANY(%s)`` with the list
    as one array parameter. The SQL then has a handful of parameters whatever the batch's
    size, so psycopg parses it once (it caches statements of up to 50 parameters) and
    quotes one array instead of each id. A list found anywhere else stays as it is."""
    owner = {position: k for position, k, _i in slots}
    marks = [m for m in _PLACEHOLDER.finditer(sql) if m.group() == "%s"]
    if len(marks) != len(params):
        return sql, params, slots
    pieces, new_params, new_slots, cursor, j = [], [], [], 0, 0
    while j < len(marks):
        k = owner.get(j)
        end = j
        while end + 1 < len(marks) and owner.get(end + 1) == k and k is not None:
            if sql[marks[end].end() : marks[end + 1].start()] != ", ":
                break
            end += 1
        start = marks[j].start() - len("IN (")
        if (
            k is not None
            and sql[start : marks[j].start()] == "IN ("
            and sql[marks[end].end() : marks[end].end() + 1] == ")"
        ):
            pieces.append(sql[cursor:start] + "= ANY(%s)")
            cursor = marks[end].end() + 1
            new_slots.append((len(new_params), k, None))
            new_params.append(None)
            j = end + 1
            continue
        pieces.append(sql[cursor : marks[j].end()])
        cursor = marks[j].end()
        if k is not None:
            new_slots.append((len(new_params), k, next(i for p, _k, i in slots if p == j)))
        new_params.append(params[j])
        j += 1
    pieces.append(sql[cursor:])
    return "".join(pieces), new_params, new_slots


def _bucket(length: int) -> int:
    return 1 << (length - 1).bit_length()


class Compiled:
    """``Compiled(build)(ids, ..., **constants)`` -> ``list(build(ids, ..., **constants))``."""

    def __init__(self, build: Callable[..., QuerySet]) -> None:
        self.build = build
        self._shapes: dict[Hashable, _Shape | None] = {}
        self._lock = threading.Lock()

    def __call__(self, *id_lists: Sequence[int | str], **constants: Hashable) -> list:
        lists = [list(dict.fromkeys(ids)) for ids in id_lists]
        kinds = tuple(type(ids[0]) if ids else None for ids in lists)
        if not all(kind in (int, str) for kind in kinds):
            return list(self.build(*lists, **constants))
        sizes = tuple(_bucket(len(ids)) for ids in lists)
        key = (sizes, kinds, tuple(sorted(constants.items())))
        with self._lock:
            known = key in self._shapes
            shape = self._shapes.get(key)
        if not known:
            shape = self._compile(sizes, kinds, constants)
            with self._lock:
                self._shapes[key] = shape
        if shape is None:  # not compilable this way
            return list(self.build(*lists, **constants))
        return self._run(shape, lists)

    def _compile(self, sizes: tuple[int, ...], kinds: tuple, constants: dict) -> _Shape | None:
        stand_ins = [
            [
                _STAND_IN - k * _LIST_STRIDE - i if kind is int else f"\x1fstand-in {k} {i}"
                for i in range(size)
            ]
            for k, (size, kind) in enumerate(zip(sizes, kinds, strict=True))
        ]
        queryset = self.build(*stand_ins, **constants)
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        where = {value: (k, i) for k, ids in enumerate(stand_ins) for i, value in enumerate(ids)}
        slots = [
            (position, *where[value])
            for position, value in enumerate(params)
            if type(value) in (int, str) and value in where
        ]
        if {(k, i) for _position, k, i in slots} != set(where.values()):
            return None
        if compiler.connection.vendor == "postgresql":
            sql, params, slots = _as_arrays(sql, list(params), slots)
        return _Shape(queryset, compiler, sql, tuple(params), slots)

    def _run(self, shape: _Shape, lists: list[list[int]]) -> list:
        params = list(shape.params)
        for position, k, i in shape.slots:
            ids = lists[k]
            params[position] = ids if i is None else ids[min(i, len(ids) - 1)]
        compiler = copy.copy(shape.compiler)
        compiler.connection = connections[shape.queryset.db]  # this thread's
        ready = (shape.sql, tuple(params))
        compiler.as_sql = lambda *args, **kwargs: ready
        queryset = _QuerySet(shape.queryset, _Query(shape.queryset.query, compiler))
        return list(shape.queryset._iterable_class(queryset))
