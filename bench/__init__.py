"""The handoff console's benchmark suite: ``python -m bench`` (``make bench``).

Each scenario is a module of this package with ``run(args) -> list[Row]``, listed in
``bench.core.SCENARIOS``; every row carries its bare-framework baseline measured in the
same run and the ratio to it. See ``bench/README.md``.
"""
