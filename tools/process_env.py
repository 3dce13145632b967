"""Which environment variables each process of the stack gets (docs/security.md,
"Each process gets only its own secrets").

`make run` used to hand every child the whole environment, so Rasa held the progress
service's agency key, the ID-hash key and the agent secret it never uses. Now each process
of `tools/stack.py` (and of `tools/cluster.py`, which builds on it) inherits only

- what any Python process needs: PATH, HOME, locale, PYTHON*, proxies and CA bundles, …;
- the variables its own code reads, derived from the source: every UPPER_SNAKE string
  literal in its packages (the settings modules: channels/config.py and
  wechat_channel/config.py for Rasa, actions/config.py, web/config.py,
  progress_service/settings.py, …) and in core/ (shared helpers every process may use);
- variables of its libraries, by prefix (Rasa's RASA_*, TF_*, SQL_*; sanic's SANIC_*);
- the `${VAR}` references of the endpoints/credentials files it reads (DB_*, REDIS_*);

and, of the known secrets (below), only those granted to it, whether inherited or set
by the stack. A process the stack does not know (a test's own Service) inherits everything.
"""
import ast
import dataclasses
import functools
import pathlib
import re
from typing import Dict, FrozenSet, Iterable, Mapping, Optional, Tuple

from core import defaults
from core.conversation_codes import KEY_ENV as CODES_KEY_ENV
from core.devsecrets import ACTION_SECRET_NAMES, RASA_SECRET_NAMES, SECRET_NAMES
from wechat_channel.config import ENV_VARS as WECHAT_ENV_VARS

ROOT = defaults.ROOT

# Secrets, and the processes that may hold each. Anything not granted is removed from a
# process's environment, even when the stack itself would set it.
WECHAT_SECRETS = frozenset(WECHAT_ENV_VARS[key] for key in ("token", "appsecret", "aes_key"))
# signs the progress service's status events to the WeChat channel (docs/operations.md)
EVENTS_SECRET = "PROGRESS_EVENTS_SECRET"
GRANTS: Dict[str, FrozenSet[str]] = {
    # the HTTP API token, the action server's token (endpoints), WeChat's credentials
    "rasa": frozenset({*RASA_SECRET_NAMES, *ACTION_SECRET_NAMES, *WECHAT_SECRETS, EVENTS_SECRET}),
    # the progress service's reading key, its own token, the key that derives hotline codes
    "actions": frozenset({"PROGRESS_API_KEY", *ACTION_SECRET_NAMES, CODES_KEY_ENV}),
    # the console: the reading key, the agent-token secret, Rasa's API token (NLU parse)
    "web": frozenset({"PROGRESS_API_KEY", "PROGRESS_AGENT_SECRET", *RASA_SECRET_NAMES}),
    # the stand-in for the agency's system: its own four keys, the status events' secret
    "progress": frozenset({*SECRET_NAMES, EVENTS_SECRET}),
}
KNOWN_SECRETS = frozenset().union(*GRANTS.values())

# What every Python process may need, whatever it runs.
COMMON_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TZ",
    "TMPDIR", "TEMP", "TMP", "VIRTUAL_ENV", "LD_LIBRARY_PATH",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MPLCONFIGDIR",
})
COMMON_PREFIXES = ("LC_", "PYTHON", "XDG_", "LOG_LEVEL", "SQLALCHEMY_", "COV_CORE_", "COVERAGE_")

# The packages whose code runs in each process, and its libraries' variables.
PACKAGES: Dict[str, Tuple[str, ...]] = {
    "rasa": ("channels", "wechat_channel", "assistant"),
    "actions": ("actions", "assistant"),
    "web": ("web", "assistant"),
    "progress": ("progress_service",),
}
PREFIXES: Dict[str, Tuple[str, ...]] = {
    # Rasa (RASA_TELEMETRY_*, RASA_DUCKLING_HTTP_URL, …), TensorFlow, its SQL tracker
    # store's pool (SQL_POOL_SIZE, SQL_MAX_OVERFLOW), sanic (SANIC_REAL_IP_HEADER, …)
    "rasa": ("RASA_", "TF_", "TFHUB_", "CUDA_", "SQL_", "SANIC_"),
    "actions": ("SANIC_",),
    "web": ("SANIC_",),
    "progress": ("SANIC_",),
}
RASA_NAMES = frozenset({"MAX_NUMBER_OF_PREDICTIONS", "TICKET_LOCK_LIFETIME", "FORCE_JSON_LOGGING",
                        "COMPRESS_ACTION_SERVER_REQUEST"})

_VARIABLE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@functools.lru_cache(maxsize=None)
def _names_in_file(path: pathlib.Path, modified: float) -> FrozenSet[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return frozenset()
    return frozenset(node.value for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and isinstance(node.value, str)
                     and _VARIABLE.match(node.value))


def names_in_code(packages: Iterable[str], root: pathlib.Path = ROOT) -> FrozenSet[str]:
    """Every UPPER_SNAKE string literal in the packages' Python files (tests excluded)."""
    names = set()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "tests" not in path.relative_to(root).parts:
                names |= _names_in_file(path, path.stat().st_mtime)
    return frozenset(names)


def references(*files: Optional[pathlib.Path]) -> FrozenSet[str]:
    """The `${VAR}` names in YAML files Rasa-style loaders substitute from the environment."""
    names = set()
    for path in files:
        if path is not None and pathlib.Path(path).is_file():
            names |= set(_REFERENCE.findall(pathlib.Path(path).read_text(encoding="utf-8")))
    return frozenset(names)


@dataclasses.dataclass(frozen=True)
class EnvironmentPolicy:
    """What one process inherits from the stack's environment."""

    process: str
    names: FrozenSet[str]
    prefixes: Tuple[str, ...]
    secrets: FrozenSet[str]

    def allows(self, name: str) -> bool:
        if name in KNOWN_SECRETS:
            return name in self.secrets
        return name in self.names or name.startswith(self.prefixes)

    def environment(self, parent: Mapping[str, str], explicit: Mapping[str, str]) -> Dict[str, str]:
        """The allowed part of `parent`, then `explicit` (what the stack sets for this
        process), without any secret this process is not granted."""
        env = {name: value for name, value in parent.items() if self.allows(name)}
        env.update(explicit)
        return {name: value for name, value in env.items()
                if name not in KNOWN_SECRETS or name in self.secrets}


def policy(process: str, files: Iterable[Optional[pathlib.Path]] = (),
           extra_names: Iterable[str] = ()) -> EnvironmentPolicy:
    """The policy of `process` ("rasa", "actions", "web", "progress"); `files`: the
    endpoints/credentials files it reads (their `${VAR}` references are allowed)."""
    names = (COMMON_NAMES | names_in_code(PACKAGES[process]) | names_in_code(("core",))
             | references(*files) | frozenset(extra_names))
    if process == "rasa":
        names |= RASA_NAMES
    return EnvironmentPolicy(process=process, names=frozenset(names),
                             prefixes=COMMON_PREFIXES + PREFIXES[process], secrets=GRANTS[process])


def child_environment(policy_: Optional[EnvironmentPolicy], parent: Mapping[str, str],
                      explicit: Mapping[str, str]) -> Dict[str, str]:
    """A child's environment: everything (no policy: a process the stack does not know)
    or what its policy allows."""
    if policy_ is None:
        return {**parent, **explicit}
    return policy_.environment(parent, explicit)


def bare_policy(process: str) -> EnvironmentPolicy:
    """A process that reads none of ours (nginx): only the common variables, no secret."""
    return EnvironmentPolicy(process=process, names=COMMON_NAMES, prefixes=COMMON_PREFIXES,
                             secrets=frozenset())
