"""How `make run` starts Rasa: through channels/launcher.py, the HTTP API token in the
environment and never on the command line (docs/security.md, "The Rasa token")."""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from rasa.cli import run as rasa_run_cli

from channels.launcher import LaunchError, rasa_arguments
from tools.stack import StackSettings, build_services

ROOT = pathlib.Path(__file__).resolve().parents[2]


def rasa_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    rasa_run_cli.add_subparser(parser.add_subparsers(), parents=[])
    return parser


def rasa_service(tmp_path, environ):
    services = build_services(StackSettings(state_dir=tmp_path), environ)
    return next(service for service in services if service.name == "rasa")


@pytest.mark.parametrize("token", ["-leading-dash-token", "--double", "plainToken_123", "-t"])
def test_the_token_reaches_rasa_through_the_environment_never_the_command_line(tmp_path, token):
    rasa = rasa_service(tmp_path, {"RASA_AUTH_TOKEN": token})

    assert rasa.command[1:3] == ["-m", "channels.launcher"]
    assert not any(token in part for part in rasa.command)
    assert rasa.env["RASA_AUTH_TOKEN"] == token
    # what the launcher hands Rasa's own parser: argparse exits (SystemExit 2) on
    # "expected one argument" when a token starting with "-" is passed as a separate word
    arguments = rasa_parser().parse_args(rasa_arguments(rasa.command[3:], rasa.env))
    assert arguments.auth_token == token
    assert arguments.enable_api is True
    assert arguments.port == StackSettings().rasa_port


def test_the_development_token_is_generated_into_the_state_folder_not_the_command(tmp_path):
    rasa = rasa_service(tmp_path, {})
    token = rasa.env["RASA_AUTH_TOKEN"]
    assert token and f"RASA_AUTH_TOKEN={token}" in (tmp_path / "secrets.env").read_text(encoding="utf-8")
    assert "--enable-api" in rasa.command
    assert not any(token in part for part in rasa.command)


@pytest.mark.parametrize("arguments", [
    ["--auth-token", "secret"], ["--auth-token=secret"], ["-t", "secret"], ["-tsecret"],
    ["--auth", "secret"], ["--auth-t=secret"], ["run", "--enable-api", "--auth-token=secret"],
])
def test_the_launcher_refuses_a_token_on_its_command_line(arguments):
    with pytest.raises(LaunchError, match="RASA_AUTH_TOKEN"):
        rasa_arguments(arguments, {"RASA_AUTH_TOKEN": "from-the-environment"})


def test_the_launcher_never_opens_the_api_without_a_token():
    with pytest.raises(LaunchError, match="--enable-api"):
        rasa_arguments(["--enable-api", "--port", "5005"], {})
    with pytest.raises(LaunchError, match="--enable-api"):
        rasa_arguments(["--enable-api"], {"RASA_AUTH_TOKEN": ""})
    # without the API, no token is needed and none is added
    assert rasa_arguments(["--port", "5005"], {}) == ["run", "--port", "5005"]
    # "run" may be given, as to `rasa`; other options pass unchanged
    assert rasa_arguments(["run", "--cors", "*"], {"RASA_AUTH_TOKEN": "x"}) == \
        ["run", "--cors", "*", "--auth-token=x"]


def test_the_launcher_process_exits_with_2_instead_of_opening_the_api():
    env = {key: value for key, value in os.environ.items() if key != "RASA_AUTH_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", "channels.launcher", "--enable-api", "--port", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--enable-api without RASA_AUTH_TOKEN" in done.stderr


def test_rasa_telemetry_and_crash_reports_stay_off_unless_the_deployer_says_so(tmp_path):
    assert rasa_service(tmp_path, {}).env["RASA_TELEMETRY_ENABLED"] == "false"
    assert rasa_service(tmp_path, {"RASA_TELEMETRY_ENABLED": "true"}).env["RASA_TELEMETRY_ENABLED"] == "true"


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            json.loads(response.read())
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_running_rasa_shows_no_token_in_its_command_line_and_still_guards_its_api(running_stack):
    token = running_stack.environ["RASA_AUTH_TOKEN"]
    process = running_stack.stack.processes["rasa"]
    cmdline = pathlib.Path(f"/proc/{process.pid}/cmdline").read_bytes()
    assert b"channels.launcher" in cmdline and b"--enable-api" in cmdline
    assert token.encode() not in cmdline
    assert b"auth-token" not in cmdline
    # nor in any other process of the stack (all of them as `ps` shows them)
    for name, child in running_stack.stack.processes.items():
        assert token.encode() not in pathlib.Path(f"/proc/{child.pid}/cmdline").read_bytes(), name

    status = f"{running_stack.rasa_url}/status"
    assert _status(status) == 401
    assert _status(f"{status}?token=not-{token}") == 401
    assert _status(f"{status}?token={token}") == 200
