"""Fixtures for the progress tests (helpers in progress_helpers.py)."""
import sys
import pathlib

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from progress_helpers import ServiceProcess, database, new_secrets  # noqa: E402


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def service_secrets():
    return new_secrets()


@pytest.fixture
def start_service(tmp_path, service_secrets):
    started = []

    def start(database_url: str, **settings) -> ServiceProcess:
        service = ServiceProcess(database_url, service_secrets,
                                 tmp_path / f"service-{len(started)}.log", **settings)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
