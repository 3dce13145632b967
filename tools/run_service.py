"""Run one process of the production topology in the foreground, in place of this Python
process: what a container of deploy/compose.yml runs (docs/deploy.md "Paper artefacts").

    python -m tools.run_service rasa-1      # or actions-2, web-1, progress, nginx, ...
    python -m tools.run_service prepare     # the one-time step before the replicas: the tracker
                                            # store, `make migrate` (tools/migrate.py), audit retention

The process is the one `make run-cluster` starts under that name, with the same command,
arguments and environment: tools/cluster.py builds the whole cluster from the environment
(ports, CORS_ORIGINS, BIND_HOST, secrets) and this command execs the named process, so a
container can never drift from the tested topology. With ENVIRONMENT=production it first
runs `make check-config`'s checks and refuses to start (exit 2) when any fails.
"""
import argparse
import os
import sys
from typing import Dict, List, Mapping, Tuple

from core import defaults
from tools import check_config
from tools.cluster import ClusterSettings, build_cluster, prepare_store
from tools.process_env import child_environment
from tools.stack import Service

PREPARE = "prepare"


def resolve(name: str, environ: Mapping[str, str]) -> Tuple[Service, Dict[str, str], List[Service]]:
    """(the service called `name`, its whole environment, every service of the cluster)."""
    services, env = build_cluster(ClusterSettings.from_env(environ), dict(environ))
    by_name = {service.name: service for service in services}
    if name != PREPARE and name not in by_name:
        raise KeyError(f"no process {name!r}; the cluster has: {', '.join(by_name)}, or {PREPARE}")
    service = by_name.get(name)
    if service is None:  # the one-time step: prepare_store composes each step's environment
        return None, env, services
    # what tools/stack.py's Stack gives the process (tools/process_env.py: only its own variables)
    parent = {**env, "PYTHONPATH": str(defaults.ROOT), "PYTHONUNBUFFERED": "1"}
    return service, child_environment(service.environment, parent, service.env), services


def main(argv=None, environ=os.environ) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="a process of the cluster (rasa-1, actions-1, web-1, progress, nginx) "
                                     f"or {PREPARE}")
    args = parser.parse_args(argv)
    if environ.get(check_config.PRODUCTION_ENV, "").strip().lower() == "production":
        problems = check_config.check(environ)
        if problems:
            print(f"{args.name}: not starting, the configuration is not fit for production:", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            return 2
    try:
        service, env, services = resolve(args.name, environ)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    if service is None:
        prepare_store(services, env, log=sys.stdout)
        return 0
    os.chdir(defaults.ROOT)
    sys.stdout.flush()
    os.execvpe(service.command[0], service.command, env)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
