"""Files that hold personal data are readable by their owner only.

The SQLite databases under `.state/` (conversations, the progress service's applications
and lockout counters, the console's agents and sessions) are created 0600, and the state
folder is 0700. Every process that opens one of them calls `private_sqlite_file` before
SQLite does, so the file never exists with wider permissions; SQLite gives the `-wal`,
`-shm` and `-journal` files it creates later the permissions of the database file.
Files made by an older version (0644) are tightened on the next start.
"""
import os
import pathlib
import stat
from typing import Union

from core import defaults

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _is_state_dir(directory: pathlib.Path) -> bool:
    try:
        return directory.name == defaults.STATE_DIR.name or directory.resolve() == defaults.STATE_DIR.resolve()
    except OSError:
        return False


def private_dir(directory: Union[str, pathlib.Path]) -> pathlib.Path:
    """Create `directory` (and missing parents) 0700. An existing state folder (`.state`)
    is tightened to 0700; any other existing folder is the operator's choice and left as is."""
    directory = pathlib.Path(directory)
    if not directory.exists():
        directory.mkdir(parents=True, mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered through the umask
    elif _is_state_dir(directory) and stat.S_IMODE(directory.stat().st_mode) != DIR_MODE:
        os.chmod(directory, DIR_MODE)
    return directory


def private_file(path: Union[str, pathlib.Path]) -> pathlib.Path:
    """Create `path` empty with mode 0600 if it does not exist; tighten it to 0600 if it does."""
    path = pathlib.Path(path)
    private_dir(path.parent)
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, FILE_MODE)
    os.close(descriptor)
    if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
        os.chmod(path, FILE_MODE)
    return path


def private_sqlite_file(path: Union[str, pathlib.Path]) -> pathlib.Path:
    """Before SQLite opens `path`: the file exists with 0600 (an empty file is an empty
    database), its folder as `private_dir` makes it, and companion files left by an older
    run are tightened too."""
    path = private_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists() and stat.S_IMODE(companion.stat().st_mode) != FILE_MODE:
            os.chmod(companion, FILE_MODE)
    return path


def sqlite_path(database_url: str) -> Union[pathlib.Path, None]:
    """The file of an SQLAlchemy SQLite URL (`sqlite:///.state/x.db`), None for any other
    database or an in-memory one."""
    if not database_url.startswith("sqlite"):
        return None
    rest = database_url.split(":///", 1)
    if len(rest) != 2:
        return None
    name = rest[1].split("?", 1)[0]
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return pathlib.Path(name)


def private_database_file(database_url: str) -> None:
    """Before an engine opens `database_url`: its SQLite file (if it is one) made 0600 in
    a 0700 folder, so SQLite never creates it readable by others; other databases: nothing."""
    path = sqlite_path(database_url)
    if path is not None:
        private_sqlite_file(path)
