"""core/log_privacy.py: no full ID number in a log line, whoever logs it and however."""
import logging

import pytest

from core import log_privacy


@pytest.fixture
def captured():
    log_privacy.install()
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    logger = logging.getLogger("tests.log_privacy")
    handler = Keep()
    logger.addHandler(handler)  # added after the install: still covered
    logger.setLevel(logging.INFO)
    yield logger, records
    logger.removeHandler(handler)


@pytest.mark.parametrize("message, args", [
    ("Invalid session %s", ("sfz110101199003074477",)),  # python-engineio, the sid as sent
    ("invalid url %r", (b"/api/v1/applications/\xe8\xba\xab\xe4\xbb\xbd\xe8\xaf\x81110101199003070038",)),
    ("typed: 110101 19900307 0038", ()),
    ("15 digits %s", ("110101900307003",)),
])
def test_id_numbers_are_masked_in_any_record(captured, message, args):
    logger, records = captured
    logger.error(message, *args)
    assert records and "1990030" not in records[-1] and "9003070" not in records[-1], records[-1]
    assert "0038" in records[-1] or "4477" in records[-1] or "7003" in records[-1]


def test_an_exception_quoting_an_id_number_is_masked_in_its_traceback(captured):
    logger, records = captured
    try:
        raise ValueError("invalid url b'/api/\\xe8\\xaf\\x81110101199003070038'")
    except ValueError:
        logger.exception("request failed")
    assert "Traceback" in records[-1] and "1990030" not in records[-1] and "0038" in records[-1]


def test_other_records_are_left_as_they_are(captured):
    logger, records = captured
    logger.info("lookup %s took %d ms", "NC********04", 12)
    assert records[-1] == "lookup NC********04 took 12 ms"


def test_installing_twice_masks_once():
    log_privacy.install()
    factory = logging.getLogRecordFactory()
    log_privacy.install()
    assert logging.getLogRecordFactory() is factory
