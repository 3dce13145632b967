"""Reading knowledge/guide_steps.yml for the walk: parsed, every reply rendered once, cached.

A missing phrase or a step of the wrong shape is found when the file is read, not mid-walk.
The file is re-read when it changes; a broken edit keeps the last good version in use.
"""
import pathlib
from typing import Iterator, List, Optional, Sequence, Tuple

import yaml

from assistant.guide.data import WHOM_VALUES, GuideData, GuideDataError, per_whom
from assistant.guide.render import GuideState, Renderer, Reply
from assistant.guide.walk import troubleshoot
from core import defaults
from core.reload import ReloadingFiles, shared

DEFAULT_STEPS_FILE = defaults.KNOWLEDGE_DIR / "guide_steps.yml"


def all_replies(data: GuideData) -> Iterator[Tuple[str, Reply]]:
    """Every reply the walk can give, once (label, reply): for checks and the validator."""
    for links in (False, True):
        render = Renderer(data, links)
        yield "choose_channel", render.choose_channel()
        yield "overview", render.overview()
        yield "finish", render.finish()
        yield "exited", render.paused(GuideState())
        yield "resume", render.offer_resume(GuideState())
        yield "stuck outside a walk", troubleshoot(data, "", GuideState(), links).replies[0]
        for channel, steps in data.steps.items():
            for whom in (None, *WHOM_VALUES):
                for step in steps:
                    state = GuideState(channel=channel, for_whom=whom, step=step.number, active=True)
                    where = f"{channel} step {step.number} ({whom or 'anyone'})"
                    yield where, render.step(state)
                    yield where + " paused", render.paused(state)
                    yield where + " stuck", troubleshoot(data, "", state, links).replies[0]
                    for kind, words in (data.doc.get("problem_kinds") or {}).items():
                        if words:  # a problem named in the message, here or at another step
                            reply = troubleshoot(data, str(words[0]), state, links).replies[0]
                            yield where + f" stuck: {kind}", reply
                whom_step = data.whom_step(channel)
                if whom_step:
                    yield f"{channel} who question", render.whom_question(
                        GuideState(channel=channel, step=whom_step, active=True))
            for problem in data.problems.values():  # also asked about outside a walk
                for whom in WHOM_VALUES:
                    data.phrase("problem", title=problem["title"], text=per_whom(problem["text"], whom))


def parse_and_render(path: pathlib.Path) -> GuideData:
    """GuideData from the file, after every reply it can produce has been rendered once:
    a missing phrase or a step of the wrong shape is found here, not mid-walk."""
    try:
        with path.open(encoding="utf-8") as handle:
            data = GuideData(yaml.safe_load(handle) or {}, source=path.name)
        for _ in all_replies(data):
            pass
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
