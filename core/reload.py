"""The one reload-on-change cache for files people edit while the assistant runs.

`ReloadingFiles(paths, load)` calls `load()` on first use and again whenever one of
the files changes (modification time or size). When a reload fails (the edit is broken),
the last good value stays in service and the error is logged once per broken version;
without a good value the error is raised to the caller.
"""
import logging
import os
import pathlib
import threading
from typing import Callable, Generic, Optional, Sequence, Tuple, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _stamp(paths: Sequence[pathlib.Path]) -> Tuple:
    stamp = []
    for path in paths:
        try:
            stat = os.stat(path)
            stamp.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamp.append((str(path), None, None))
    return tuple(stamp)


class ReloadingFiles(Generic[T]):
    def __init__(self, paths: Sequence[pathlib.Path], load: Callable[[], T],
                 errors: Tuple[type, ...] = (Exception,)):
        self.paths = [pathlib.Path(path) for path in paths]
        self.load = load
        self.errors = errors
        self._lock = threading.Lock()
        self._stamp: Optional[Tuple] = None
        self._value: Optional[T] = None
        self._loaded = False

    def get(self) -> T:
        stamp = _stamp(self.paths)
        with self._lock:
            if self._loaded and stamp == self._stamp:
                return self._value
            try:
                value = self.load()
            except self.errors as error:
                if not self._loaded:
                    raise
                logger.error("%s: edit not applied, keeping the last good version: %s",
                             ", ".join(path.name for path in self.paths), error)
                self._stamp = stamp  # don't retry on every message; the next edit retries
                return self._value
            self._value, self._stamp, self._loaded = value, stamp, True
            return value


_registry_lock = threading.Lock()
_registry: dict = {}


def shared(key: Tuple, factory: Callable[[], "ReloadingFiles[T]"]) -> "ReloadingFiles[T]":
    """One cache per key (e.g. per directory) for the whole process."""
    with _registry_lock:
        cache = _registry.get(key)
        if cache is None:
            cache = _registry[key] = factory()
        return cache
