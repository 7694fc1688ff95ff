"""What the warehouse files' code has to tell people: a damaged copy rebuilt, a WAL set aside, a copy redone.

Pure library code: messages go to the Python logger `dagster_project.lib.warehouse`. The
Dagster side forwards that logger to the log of the run that is executing
(defs/serving/warehouse.py), and `make run` also collects them for its closing report
(`collecting`), where they are not lost among Dagster's debug lines.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

LOGGER_NAME = "dagster_project.lib.warehouse"
log = logging.getLogger(LOGGER_NAME)


def notice(message: str) -> None:
    """Something about the warehouse files a person should know: logged as a warning."""
    log.warning(message)


class _Collector(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__(level=logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@contextmanager
def collecting() -> Iterator[list[str]]:
    """The notices given in this process while the block runs, in order."""
    messages: list[str] = []
    handler = _Collector(messages)
    log.addHandler(handler)
    try:
        yield messages
    finally:
        log.removeHandler(handler)
