"""The Rasa command line that `make run` builds must survive any generated token."""
import argparse

import pytest


@pytest.mark.parametrize("token", ["-leading-dash-token", "--double", "plainToken_123"])
def test_rasa_command_keeps_token_even_when_it_starts_with_a_dash(tmp_path, token):
    from rasa.cli import run as rasa_run_cli

    from tools.stack import StackSettings, build_services

    settings = StackSettings(state_dir=tmp_path)
    services = build_services(settings, {"RASA_AUTH_TOKEN": token})
    rasa = next(service for service in services if service.name == "rasa")
    run_index = rasa.command.index("run")

    parser = argparse.ArgumentParser()
    rasa_run_cli.add_subparser(parser.add_subparsers(), parents=[])
    # argparse exits (SystemExit 2) on "expected one argument" – the failure seen in CI.
    arguments = parser.parse_args(rasa.command[run_index:])

    assert arguments.auth_token == token
    assert arguments.enable_api is True


def test_only_the_agent_console_gets_the_agent_token_secret(tmp_path):
    from tools.stack import StackSettings, build_services

    services = {s.name: s for s in build_services(StackSettings(state_dir=tmp_path),
                                                  {"PROGRESS_AGENT_SECRET": "from-the-environment"})}
    assert services["web"].env["PROGRESS_AGENT_SECRET"] == "from-the-environment"
    assert services["actions"].env["PROGRESS_AGENT_SECRET"] == ""


def test_rasa_telemetry_and_crash_reports_stay_off_unless_the_deployer_says_so(tmp_path):
    from tools.stack import StackSettings, build_services

    def rasa_env(environ):
        services = build_services(StackSettings(state_dir=tmp_path), environ)
        return next(s for s in services if s.name == "rasa").env

    assert rasa_env({})["RASA_TELEMETRY_ENABLED"] == "false"
    assert rasa_env({"RASA_TELEMETRY_ENABLED": "true"})["RASA_TELEMETRY_ENABLED"] == "true"
