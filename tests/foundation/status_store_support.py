"""Fixtures of the status-subscription store's tests (test_status_subscriptions.py,
test_status_watch.py): a store on SQLite and on PostgreSQL, with a clock the test moves."""
import pytest

from core.status_subscriptions import SubscriptionStore
from tests.support import postgres_schema


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'subscriptions.db'}"
    else:
        with postgres_schema("status_test") as pg_url:
            yield pg_url


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(url, clock):
    opened = SubscriptionStore(url, clock=clock)
    yield opened
    opened.close()
