"""`rasa run`, with the HTTP API token taken from the environment instead of the command line.

Rasa 3.6 reads its HTTP API token only from `rasa run --auth-token` (no environment
variable, no file), and a process's command line is readable by every local user
(`ps`, /proc/<pid>/cmdline). This launcher is the Rasa server process: it reads
RASA_AUTH_TOKEN from its environment (readable only by the process's own user), removes
it from `os.environ` (nothing Rasa starts inherits it), adds `--auth-token=<token>` to
`sys.argv` inside the process and calls Rasa's own entry point. The kernel keeps showing
the arguments the process was started with, so the token never appears in the process list.

    RASA_AUTH_TOKEN=… python -m channels.launcher --enable-api --model … --port 5005 …

takes exactly the arguments of `rasa run` (tools/stack.py starts Rasa this way). It refuses
to start when the token is given on the command line anyway, and when `--enable-api` would
open the HTTP API without a token.
"""
import os
import sys
from typing import List, Mapping, MutableMapping

from rasa.__main__ import main as rasa_main

TOKEN_VARIABLE = "RASA_AUTH_TOKEN"


class LaunchError(ValueError):
    """The arguments or the environment would expose the token or the API (exit code 2)."""


def _names_the_token(argument: str) -> bool:
    # "-t", "-tVALUE", "--auth-token", "--auth-token=…" and argparse's abbreviations ("--auth")
    if argument.startswith("--"):
        return len(argument) > 2 and "--auth-token".startswith(argument.split("=", 1)[0])
    return argument.startswith("-t")


def rasa_arguments(arguments: List[str], environ: Mapping[str, str]) -> List[str]:
    """The arguments for Rasa's own parser: `run`, the given ones, the token from `environ`."""
    arguments = list(arguments)
    if arguments[:1] == ["run"]:
        arguments = arguments[1:]
    if any(_names_the_token(argument) for argument in arguments):
        raise LaunchError(f"the token belongs in {TOKEN_VARIABLE}, never on the command line "
                          "(every local user can read it there)")
    token = environ.get(TOKEN_VARIABLE, "")
    if not token and "--enable-api" in arguments:
        raise LaunchError(f"--enable-api without {TOKEN_VARIABLE} would open Rasa's HTTP API "
                          "to everyone who reaches the port")
    # "=" form: a urlsafe token may start with "-", which argparse would take for an option
    return ["run", *arguments] + ([f"--auth-token={token}"] if token else [])


def main(argv: List[str] = None, environ: MutableMapping[str, str] = os.environ) -> None:
    argv = sys.argv if argv is None else argv
    try:
        arguments = rasa_arguments(argv[1:], environ)
    except LaunchError as error:
        sys.stderr.write(f"channels.launcher: {error}\n")
        sys.exit(2)
    environ.pop(TOKEN_VARIABLE, None)
    sys.argv = ["rasa", *arguments]  # what Rasa's parser reads; /proc keeps the original
    rasa_main()


if __name__ == "__main__":
    main()
