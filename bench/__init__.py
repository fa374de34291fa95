"""taskflow's benchmarks: ``python3 -m bench`` from the repository root.

This folder is not part of the installed distribution (setup.cfg only packages ``taskflow``);
it is a package only so that ``python3 -m bench`` runs it. Each suite lives in its own module
(``direct.py``: direct workflow calls) and is registered in ``run.py``. Shared helpers:
``common.py`` (options, progress output), ``databases.py`` (scratch databases),
``timing.py`` (timed calls), ``stats.py`` (median, p95), ``environment.py`` (what machine ran
it) and ``report.py`` (rendering, and writing docs/benchmarks.md).
"""
