"""Reading knowledge/guide_steps.yml for the walk: parsed, every reply rendered once, cached.

A missing phrase or a step of the wrong shape is found when the file is read, not mid-walk.
The file is re-read when it changes; a broken edit keeps the last good version in use.
"""
import pathlib
from typing import List, Optional, Sequence

import yaml

from assistant.guide.data import WHOM_VALUES, GuideData, GuideDataError, per_whom
from assistant.guide.render import GuideState, Renderer
from assistant.guide.walk import troubleshoot
from core import defaults
from core.reload import ReloadingFiles, shared

DEFAULT_STEPS_FILE = defaults.KNOWLEDGE_DIR / "guide_steps.yml"


def parse_and_render(path: pathlib.Path) -> GuideData:
    """GuideData from the file, after every reply it can produce has been rendered once."""
    try:
        with path.open(encoding="utf-8") as handle:
            data = GuideData(yaml.safe_load(handle) or {}, source=path.name)
        for links in (False, True):
            render = Renderer(data, links)
            render.choose_channel()
            render.finish()
            render.paused(GuideState())
            render.offer_resume(GuideState())
            for channel, steps in data.steps.items():
                for whom in WHOM_VALUES:
                    for step in steps:
                        state = GuideState(channel=channel, for_whom=whom, step=step.number, active=True)
                        render.step(state)
                        render.paused(state)
                        troubleshoot(data, "", state, links)  # "遇到问题" on every step
                    render.choose_whom(GuideState(channel=channel, active=True))
                    for problem in data.problems.values():  # also asked about outside a walk
                        data.phrase("problem", title=problem["title"], text=per_whom(problem["text"], whom))
            troubleshoot(data, "", GuideState(), links)
    except GuideDataError:
        raise
    except (OSError, yaml.YAMLError, KeyError, AttributeError, TypeError, ValueError, IndexError) as error:
        raise GuideDataError(f"{path.name}: {type(error).__name__}: {error}") from error
    return data


def load_guide(path: Optional[pathlib.Path] = None) -> GuideData:
    """Parsed guide data; re-read when the file changes. Without a good version the
    error is raised."""
    path = pathlib.Path(path or DEFAULT_STEPS_FILE).resolve()
    cache = shared(("guide", str(path)),
                   lambda: ReloadingFiles([path], lambda: parse_and_render(path), errors=(GuideDataError,)))
    return cache.get()


def validate_file(path: Optional[pathlib.Path] = None, sources: Sequence[str] = ()) -> List[str]:
    """Problems an operator's edit of guide_steps.yml can cause, as "ERROR: ..." lines
    (for `make validate-knowledge`); empty when the file is fine."""
    path = pathlib.Path(path or DEFAULT_STEPS_FILE)
    try:
        data = parse_and_render(path)
    except GuideDataError as error:
        return [f"ERROR: {error}"]
    problems = []
    entries = [(f"step {step.id}", step.raw) for steps in data.steps.values() for step in steps]
    entries += [(f"problem {name}", raw) for name, raw in data.problems.items()]
    for where, raw in entries:
        if not isinstance(raw.get("verified"), bool):
            problems.append(f"ERROR: {path.name}: {where} needs verified: true or false")
        if not raw.get("source"):
            problems.append(f"ERROR: {path.name}: {where} needs a source")
        elif sources and raw["source"] not in sources:
            problems.append(f"ERROR: {path.name}: {where} cites unknown source {raw['source']!r}")
    return problems
