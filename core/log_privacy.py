"""No full ID number in any log line, whoever writes it.

The channels mask what people type before Rasa sees it, but libraries log what arrives
before that: sanic logs a request target it cannot parse as raw bytes, python-engineio an
unknown socket.io session id as sent (issue 16's hostile-input suite found both). So each
process of the project installs one log-record factory that masks every record's message
once, when it is created: handlers and loggers configured later are covered too.

Logs need no long digit runs, so besides `mask_id_card_numbers` (which skips runs that are
too long to be an ID) any run of 15 or more digits keeps only its last 4: in a raw byte
string an ID number can follow escaped hex digits ("\\x81110101…").
"""
import logging
import re

from core.privacy import mask_id_card_numbers

_LONG_DIGIT_RUN = re.compile(r"\d{11,}[\dXx]{4}")
_installed = False
_FORMATTER = logging.Formatter()


def mask_log_text(text: str) -> str:
    text = mask_id_card_numbers(text)
    return _LONG_DIGIT_RUN.sub(lambda run: "*" * (len(run.group()) - 4) + run.group()[-4:], text)


def install() -> None:
    """Idempotent; call once at process start (the Rasa process does it through channels/)."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed call is logging's to report, not ours
            return record
        masked = mask_log_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # the traceback's last line quotes the exception ("invalid url b'…'"): formatted
            # now and masked; formatters use exc_text when it is set
            record.exc_text = mask_log_text(_FORMATTER.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask_log_text(record.stack_info)
        return record

    logging.setLogRecordFactory(masked_record)
