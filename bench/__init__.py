"""taskflow's benchmarks: ``python3 -m bench`` from the repository root.

This folder is not part of the installed distribution (setup.cfg only packages ``taskflow``);
it is a package only so that ``python3 -m bench`` runs it. Each suite lives in its own module
and is registered in ``run.py``:

- ``direct.py``: workflows called directly in this process (per-step overhead);
- ``enqueue.py``: ``.delay()`` one at a time and ``delay_many``, no worker running;
- ``throughput.py``: a full queue drained by ``taskflow worker -c 2`` (a real subprocess);
- ``latency.py``: enqueue-to-start and enqueue-to-done on an idle worker;
- ``queues.py``: queues with concurrency, rate and partition limits against an unlimited
  queue, and with many finished workflows in the table;
- ``durable.py``: send-to-recv latency between two running workflows, and what parked
  (sleeping) workflows cost in rows, bytes and CPU.

Shared helpers: ``common.py`` (options, progress output), ``databases.py`` (scratch
databases), ``timing.py`` (timed calls), ``stats.py`` (median, p95), ``environment.py`` (what
machine ran it), ``report.py`` (rendering, and writing docs/benchmarks.md), ``app.py`` (the app
the worker runs: ``taskflow worker -A bench.app:app``), ``workers.py`` (starting and stopping
that worker, reading the rows it writes) and ``profile.py`` (``python3 -m bench.profile``:
summing the cProfile files of a worker run with ``$TASKFLOW_BENCH_PROFILE``).
"""
