"""The step-by-step walk to the application entry: data, rendering and the walk.

Pure Python (PyYAML + core/), importable without Rasa. actions/guide.py is the thin
adapter: slots -> GuideState, the latest message -> intent/text/entities, Turn -> replies
and slot events. All wording lives in knowledge/guide_steps.yml.

    data.py     the file as the walk reads it (channels, people, steps, problems, phrases)
    render.py   state -> text and buttons
    walk.py     one turn of the walk
    loading.py  read, check by rendering, cache (re-read on change)
"""
from assistant.guide.data import *  # noqa: F401,F403 - the package's public names
from assistant.guide.data import GuideData, GuideDataError, parse_step_number, payload, goto_payload  # noqa: F401
from assistant.guide.loading import DEFAULT_STEPS_FILE, load_guide, parse_and_render, validate_file  # noqa: F401
from assistant.guide.render import GuideState, Renderer, Reply  # noqa: F401
from assistant.guide.walk import (  # noqa: F401
    AWAIT_CHANNEL, AWAIT_RESUME, AWAIT_WHOM, Turn, handle, offer_resume, repeat, troubleshoot,
)
