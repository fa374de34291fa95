"""The ``taskflow`` group and its core commands: ``migrate`` and ``worker``."""

from __future__ import annotations

import logging
import sys

import click

from taskflow import __version__
from taskflow.broker import create_broker
from taskflow.broker.migrations import bootstrap_statements, migration_statements, pending
from taskflow.cli.common import database_conf, required_app
from taskflow.errors import TaskflowError
from taskflow.queues import validate_queue_name


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-A", "--app", "app_spec", default=None, help="The app: pkg.module or pkg.module:attr."
)
@click.version_option(__version__, prog_name="taskflow")
@click.pass_context
def main(ctx: click.Context, app_spec: str | None) -> None:
    """taskflow: durable workflows and queues on Postgres."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(levelname)s] %(message)s")
    ctx.obj = {"app_spec": app_spec}


@main.command()
@click.option("-A", "--app", "app_spec", default=None, help="Take the database from this app.")
@click.option("--database-url", default=None, help="System database URL (default: the app's).")
@click.option("--sql", "print_sql", is_flag=True, help="Print the SQL for a DBA; change nothing.")
@click.pass_context
def migrate(
    ctx: click.Context, app_spec: str | None, database_url: str | None, print_sql: bool
) -> None:
    """Create or upgrade the system database schema."""
    conf = database_conf(ctx, app_spec, database_url)
    try:
        broker = create_broker(conf)
        try:
            if print_sql:
                _print_sql(broker.dialect, conf.database_schema, broker.schema_version())
                return
            before = broker.schema_version()
            applied = broker.migrate()
            after = broker.schema_version()
        finally:
            broker.close()
    except TaskflowError as exc:
        raise click.ClickException(str(exc)) from None
    where = broker.url.redacted
    if applied:
        click.echo(f"{where}: applied {applied} migration(s), version {before} -> {after}")
    else:
        click.echo(f"{where}: schema is up to date (version {after})")


@main.command()
@click.option(
    "-A", "--app", "app_spec", default=None, help="The app: pkg.module or pkg.module:attr."
)
@click.option(
    "-c",
    "--concurrency",
    type=int,
    default=None,
    help="Child processes (prefork) or threads; default: CPU count.",
)
@click.option("-P", "--pool", default=None, help="prefork (default), threads or solo.")
@click.option(
    "-Q", "--queues", default=None, help="Comma-separated queues to serve (default: default)."
)
@click.option("-l", "--loglevel", default="INFO", help="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
@click.option(
    "-n", "--hostname", "name", default=None, help="Worker name (default: taskflow@host)."
)
@click.option("-B", "--beat", "with_beat", is_flag=True, help="Also run a beat in this worker.")
@click.option(
    "--max-tasks-per-child", type=int, default=None, help="Replace a child after N workflows."
)
@click.option(
    "--max-memory-per-child", type=int, default=None, help="Replace a child above this many KiB."
)
@click.pass_context
def worker(
    ctx: click.Context,
    app_spec: str | None,
    concurrency: int | None,
    pool: str | None,
    queues: str | None,
    loglevel: str,
    name: str | None,
    max_tasks_per_child: int | None,
    max_memory_per_child: int | None,
    with_beat: bool,
) -> None:
    """Run a worker: claim workflows from the database and run them (with -B, also fire
    schedules: a beat that leads or stands by like any other)."""
    from taskflow.worker import Worker, WorkerOptions  # noqa: PLC0415 - keep other commands light

    app = required_app(ctx, app_spec, loglevel)
    names = tuple(q.strip() for q in queues.split(",") if q.strip()) if queues else None
    try:
        app.finalize()
        options = WorkerOptions.build(
            app.conf,
            pool=pool,
            concurrency=concurrency,
            # Like a Celery worker with task_queues: every queue the app knows.
            queues=names or tuple(app.queues),
            name=name,
            max_tasks_per_child=max_tasks_per_child,
            max_memory_per_child=max_memory_per_child,
            beat=with_beat,
        )
        for queue in options.queues:
            validate_queue_name(queue)
        if with_beat:
            app.declared_schedules()  # refuse a bad beat_schedule before starting
        code = Worker(app, options).run()
    except TaskflowError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


def _print_sql(dialect: str, schema: str, current: int) -> None:
    schema_name = schema if dialect == "postgresql" else None
    out = sys.stdout
    todo = pending(current)
    out.write(f"-- taskflow schema migrations for {dialect}, from version {current}\n")
    if not todo:
        out.write("-- nothing to do: the schema is up to date\n")
        return
    out.write("BEGIN;\n")
    for statement in bootstrap_statements(dialect, schema_name):
        out.write(statement + ";\n")
    table = f'"{schema_name}".schema_migrations' if schema_name else "schema_migrations"
    for migration in todo:
        out.write(f"\n-- version {migration.version}: {migration.name}\n")
        for statement in migration_statements(migration, dialect, schema_name):
            out.write(statement + ";\n")
        name = migration.name.replace("'", "''")
        out.write(
            f"INSERT INTO {table} (version, name, applied_at) VALUES "
            f"({migration.version}, '{name}', "
            + (
                "(extract(epoch from now()) * 1000)::bigint"
                if dialect == "postgresql"
                else "CAST(strftime('%s','now') AS INTEGER) * 1000"
            )
            + ");\n"
        )
    out.write("COMMIT;\n")


__all__ = ["main"]
