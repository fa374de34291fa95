"""``app.conf``: typed settings, Celery aliases, config_from_object and the environment."""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from taskflow import Config, ConfigurationError, Taskflow
from taskflow.config import DEFAULT_DATABASE_URL

PG = "postgresql://user@db.example:5432/shop"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("TASKFLOW_APP_VERSION", raising=False)


@pytest.fixture
def settings_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A temporary importable settings module; returns its name."""
    name = f"tf_settings_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "from datetime import timedelta\n"
        f"broker_url = {PG!r}\n"
        "database_schema = 'shop'\n"
        "result_expires = timedelta(days=7)\n"
        "UNRELATED = 1\n"
        "some_helper = object()\n"
        "\n"
        "class Prod:\n"
        "    database_url = 'postgresql://prod@prod/db'\n"
        "    database_pool_size = 40\n"
        "\n"
        "TASKFLOW_DATABASE_URL = 'postgresql://ns@ns/db'\n"
        "TASKFLOW_TIMEZONE = 'Europe/Paris'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_defaults() -> None:
    conf = Config()
    assert conf.database_url is None
    assert conf.database_schema == "taskflow"
    assert conf.task_always_eager is False
    assert conf.beat_schedule == {}
    assert Config().beat_schedule is not conf.beat_schedule  # no shared mutable default
    assert conf.resolved_database_url() == DEFAULT_DATABASE_URL
    assert DEFAULT_DATABASE_URL.startswith("sqlite:///")


def test_update_sets_known_settings_case_insensitively() -> None:
    conf = Config()
    conf.update({"DATABASE_SCHEMA": "s1"}, timezone="Asia/Tokyo", result_expires=timedelta(1))
    assert conf.database_schema == "s1"
    assert conf.timezone == "Asia/Tokyo"
    assert conf.result_expires == timedelta(days=1)


def test_update_unknown_key_raises_and_names_it() -> None:
    conf = Config()
    with pytest.raises(ConfigurationError, match="'broker_uri'") as info:
        conf.update(broker_uri=PG)
    assert "database_url" in str(info.value)  # lists what is known
    assert conf.database_url is None


def test_broker_url_is_an_alias_of_database_url() -> None:
    conf = Config()
    conf.broker_url = PG
    assert conf.database_url == PG
    conf.database_url = "sqlite:///other.db"
    assert conf.broker_url == "sqlite:///other.db"
    conf.update(broker_url=PG)
    assert conf.database_url == PG
    assert "broker_url" not in {f.name for f in dataclasses.fields(Config)}


def test_config_from_module_path(settings_module: str) -> None:
    conf = Config()
    conf.from_object(settings_module)
    assert conf.database_url == PG  # through the broker_url alias
    assert conf.database_schema == "shop"
    assert conf.result_expires == timedelta(days=7)
    assert not hasattr(conf, "UNRELATED")
    assert conf.timezone == "UTC"  # namespaced names are not read without a namespace


def test_config_from_module_attribute_path(settings_module: str) -> None:
    conf = Config()
    conf.from_object(f"{settings_module}:Prod")
    assert conf.database_url == "postgresql://prod@prod/db"
    assert conf.database_pool_size == 40
    assert conf.database_schema == "taskflow"


def test_config_from_module_object(settings_module: str) -> None:
    module = __import__(settings_module)
    conf = Config()
    conf.from_object(module)
    assert conf.database_url == PG


def test_config_from_plain_objects_and_mappings() -> None:
    conf = Config()
    conf.from_object(types.SimpleNamespace(database_pool_size=3, not_a_setting=True))
    assert conf.database_pool_size == 3

    class Settings:
        task_always_eager = True

    conf.from_object(Settings)
    assert conf.task_always_eager is True

    conf.from_object({"sqlite_synchronous": "NORMAL", "junk": 1})
    assert conf.sqlite_synchronous == "NORMAL"


def test_config_from_object_with_namespace(settings_module: str) -> None:
    conf = Config()
    conf.from_object(settings_module, namespace="TASKFLOW")
    assert conf.database_url == "postgresql://ns@ns/db"
    assert conf.timezone == "Europe/Paris"
    assert conf.database_schema == "taskflow"  # lower-case names are not namespaced

    other = Config()
    other.from_object(
        {"taskflow_database_url": "x", "TASKFLOW_BROKER_URL": PG}, namespace="taskflow"
    )
    assert other.database_url == PG


def test_config_from_missing_module_or_attribute(settings_module: str) -> None:
    with pytest.raises(ConfigurationError, match="no_such_settings_module"):
        Config().from_object("no_such_settings_module_xyz")
    with pytest.raises(ConfigurationError, match="'Missing'"):
        Config().from_object(f"{settings_module}:Missing")


def test_environment_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKFLOW_DATABASE_URL", PG)
    assert Config().resolved_database_url() == PG
    # An explicit setting wins over the environment.
    assert Config(database_url="sqlite:///x.db").resolved_database_url() == "sqlite:///x.db"
    monkeypatch.setenv("TASKFLOW_DATABASE_URL", "")
    assert Config().resolved_database_url() == DEFAULT_DATABASE_URL


def test_app_configuration_without_touching_a_database(
    settings_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Taskflow("shop", broker_url=PG)
    assert app.conf.database_url == PG
    app.config_from_object(settings_module, namespace="TASKFLOW")
    assert app.conf.database_url == "postgresql://ns@ns/db"

    assert Taskflow("shop", database_url=PG, broker_url=PG).conf.database_url == PG
    with pytest.raises(ConfigurationError, match="broker_url"):
        Taskflow("shop", database_url=PG, broker_url="sqlite:///other.db")
    with pytest.raises(ConfigurationError, match="'no_such_setting'"):
        Taskflow("shop", no_such_setting=1)
    assert Taskflow("shop", database_pool_size=2).conf.database_pool_size == 2

    monkeypatch.setenv("TASKFLOW_DATABASE_URL", PG)
    assert Taskflow("shop").conf.resolved_database_url() == PG


def test_app_version_from_argument_environment_or_source_hash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Taskflow("a", app_version="v7").app_version == "v7"
    monkeypatch.setenv("TASKFLOW_APP_VERSION", "from-env")
    assert Taskflow("a").app_version == "from-env"
    monkeypatch.delenv("TASKFLOW_APP_VERSION")
    monkeypatch.syspath_prepend(str(tmp_path))

    def version_of(body: str) -> str:
        """The version of an app whose one workflow has this body (a real module file)."""
        name = f"tf_versioned_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(
            "from taskflow import Taskflow\n"
            "app = Taskflow('a')\n"
            "@app.workflow(name='wf')\n"
            f"def wf() -> int:\n    {body}\n"
        )
        app = importlib.import_module(name).app
        assert isinstance(app, Taskflow)
        return app.app_version

    assert version_of("return 1") == version_of("return 1")
    assert version_of("return 1") != version_of("return 2")
