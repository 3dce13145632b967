"""The bare Rasa anchor the turn benchmark compares against.

What a turn costs in Rasa itself, with nothing of ours around it: the same NLU pipeline
and training data as config.yml and data/nlu/, but RulePolicy alone, one fixed response
per intent (no action server), the in-memory tracker store and Rasa's stock REST channel.
The project is generated from our files into a folder under .state/bench/ and trained
there; a trained anchor is reused while its inputs are unchanged.

DIET's epoch count changes training time, not prediction time, so the quick guard in
`make test` trains the anchor with one epoch (`epochs=1`) and still compares like with like.
"""
import hashlib
import json
import pathlib
import subprocess
import sys
import time
from typing import List, Optional, Tuple

import yaml

from core import defaults

ROOT = defaults.ROOT
VENV_BIN = pathlib.Path(sys.executable).parent
ANCHOR_DIR = defaults.STATE_DIR / "bench" / "anchor"


def _domain_lists() -> Tuple[List[str], List[str]]:
    intents, entities = [], []
    for path in sorted((ROOT / "domain").glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for intent in document.get("intents") or []:
            name = intent if isinstance(intent, str) else next(iter(intent))
            if name not in intents:
                intents.append(name)
        for entity in document.get("entities") or []:
            name = entity if isinstance(entity, str) else next(iter(entity))
            if name not in entities:
                entities.append(name)
    return intents, entities


def nlu_files() -> List[pathlib.Path]:
    return sorted((ROOT / "data" / "nlu").rglob("*.yml"))


def anchor_config(epochs: Optional[int]) -> dict:
    """config.yml's pipeline unchanged (only DIET's epochs if asked), RulePolicy alone."""
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    config["assistant_id"] = "bench-anchor"
    if epochs is not None:
        for component in config["pipeline"]:
            if component["name"] == "DIETClassifier":
                component["epochs"] = epochs
    config["policies"] = [{"name": "RulePolicy"}]
    return config


def write_project(directory: pathlib.Path, epochs: Optional[int]) -> pathlib.Path:
    """config, domain and rules of the anchor; the NLU files are ours, read in place."""
    intents, entities = _domain_lists()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yml").write_text(
        yaml.safe_dump(anchor_config(epochs), allow_unicode=True, sort_keys=False), encoding="utf-8")
    domain = {
        "version": "3.1",
        "intents": intents,
        "entities": entities,
        "responses": {f"utter_{name}": [{"text": f"anchor {name}"}] for name in intents},
        "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": False},
    }
    (directory / "domain.yml").write_text(yaml.safe_dump(domain, allow_unicode=True), encoding="utf-8")
    rules = {
        "version": "3.1",
        "rules": [{"rule": f"answer {name}", "steps": [{"intent": name}, {"action": f"utter_{name}"}]}
                  for name in intents],
    }
    (directory / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    (directory / "credentials.yml").write_text("rest:\n", encoding="utf-8")
    return directory


def fingerprint(directory: pathlib.Path) -> str:
    digest = hashlib.sha256()
    for path in [directory / "config.yml", directory / "domain.yml", directory / "rules.yml",
                 *nlu_files(), *sorted((defaults.STATE_DIR / "generated" / "jieba").glob("*"))]:
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def train(epochs: Optional[int] = None, directory: pathlib.Path = ANCHOR_DIR,
          force: bool = False) -> Tuple[pathlib.Path, Optional[float]]:
    """The anchor model, trained if its inputs changed. Returns (model, seconds trained or None)."""
    if not (ROOT / "data" / "nlu" / "generated").exists():
        # generated once by `make generate` (make bench and make test run it); not rebuilt
        # here, where a parallel test may be reading the files
        subprocess.run([str(VENV_BIN / "python"), "-m", "tools.build_nlu"], cwd=ROOT, check=True)
    tag = "full" if epochs is None else f"epochs{epochs}"
    project = write_project(directory / tag, epochs)
    name = f"anchor-{fingerprint(project)}"
    model = project / "models" / f"{name}.tar.gz"
    if model.exists() and not force:
        return model, None
    data = [str(path) for path in nlu_files()] + [str(project / "rules.yml")]
    started = time.monotonic()
    subprocess.run(
        [str(VENV_BIN / "rasa"), "train", "--config", str(project / "config.yml"),
         "--domain", str(project / "domain.yml"), "--data", *data,
         "--out", str(project / "models"), "--fixed-model-name", name, "--quiet"],
        cwd=ROOT, check=True)
    seconds = time.monotonic() - started
    (project / "models" / f"{name}.json").write_text(json.dumps({"train_seconds": seconds}))
    return model, seconds


def serve_command(model: pathlib.Path, port: int) -> List[str]:
    """Rasa as it ships: REST channel, in-memory tracker, no endpoints, no action server."""
    return [str(VENV_BIN / "rasa"), "run", "--model", str(model), "--port", str(port),
            "--interface", "127.0.0.1", "--credentials", str(model.parent.parent / "credentials.yml")]


if __name__ == "__main__":
    path, took = train(int(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(path, f"trained in {took:.0f} s" if took else "(reused)")
