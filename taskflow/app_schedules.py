"""The app's side of schedules: the ones its code declares, and ``app.schedules``.

Kept out of app.py so the registry stays readable; it relies on the app's ``conf``,
``clock``, ``broker``, ``name``, ``finalize``, ``get_workflow`` and ``retrieve``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskflow.cron import zone
from taskflow.errors import ConfigurationError
from taskflow.schedules import ScheduleDraft, Schedules, beat_schedule_drafts, draft

if TYPE_CHECKING:
    from taskflow.broker import Broker
    from taskflow.clock import Clock
    from taskflow.config import Config
    from taskflow.handle import WorkflowHandle
    from taskflow.task import Workflow


class ScheduleMixin:
    """Code-declared schedules and the ``schedules`` manager of :class:`Taskflow`."""

    _declared_schedules: dict[str, tuple[ScheduleDraft, bool]]
    _schedules: Schedules | None

    if TYPE_CHECKING:  # provided by Taskflow
        conf: Config
        clock: Clock
        name: str

        @property
        def broker(self) -> Broker: ...
        def finalize(self) -> None: ...
        def get_workflow(self, name: str) -> Workflow[..., Any]: ...
        def retrieve(self, workflow_id: str) -> WorkflowHandle[Any]: ...

    def declare_schedule(
        self,
        wf: Workflow[..., Any],
        fn: Callable[..., Any],
        schedule: object,
        tz: str | None,
        backfill: bool,
        queue: str | None,
    ) -> None:
        try:
            inspect.signature(fn).bind(*([None] * (3 if wf.bind else 2)))
        except TypeError:
            raise ConfigurationError(
                f"scheduled workflow {wf.name!r} must accept (scheduled_at, context)"
            ) from None
        # Checked now so a bad cron or zone fails at import; without an explicit zone the
        # default is read again when the beat writes it, as config_from_object may come after
        # the decorators.
        checked = draft(
            wf.name,
            wf.name,
            schedule,
            tz=tz or self.conf.timezone,
            backfill=backfill,
            queue=queue,
        )
        self._declared_schedules[wf.name] = (checked, tz is not None)

    def declared_schedules(self) -> list[ScheduleDraft]:
        """The schedules this app declares in code: ``@app.workflow(schedule=...)`` and
        ``conf.beat_schedule``. Raises :class:`ConfigurationError` for a bad entry and
        :class:`UnknownWorkflowError` for an entry naming a workflow not registered here."""
        self.finalize()
        zone_default = self.conf.timezone
        zone(zone_default)
        drafts = [
            d if explicit_zone else dataclasses.replace(d, tz=zone_default)
            for d, explicit_zone in self._declared_schedules.values()
        ]
        drafts += beat_schedule_drafts(self.conf.beat_schedule, zone_default)
        names = [d.name for d in drafts]
        for d in drafts:
            self.get_workflow(d.workflow)
            if names.count(d.name) > 1:
                raise ConfigurationError(
                    f"schedule {d.name!r} is declared twice (a beat_schedule entry has the "
                    "name of a scheduled workflow)"
                )
        return drafts

    @property
    def schedules(self) -> Schedules:
        """Schedules in the database: ``create``, ``apply``, ``get``, ``list``, ``pause``,
        ``resume``, ``delete``, ``backfill``, ``trigger`` (see docs/schedules.md)."""
        if self._schedules is None:

            def check_workflow(name: str) -> None:
                self.get_workflow(name)

            self._schedules = Schedules(
                lambda: self.broker,
                self.clock,
                handle=self.retrieve,
                check_workflow=check_workflow,
                default_queue=lambda name: self.get_workflow(name).queue,
                code=self.declared_schedules,
                code_source=f"code:{self.name}",
            )
        return self._schedules


__all__ = ["ScheduleMixin"]
