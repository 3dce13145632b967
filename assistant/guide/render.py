"""Replies of the walk: state in, text and buttons out. All wording from `phrases:` and
the other texts of knowledge/guide_steps.yml."""
import dataclasses
from typing import Dict, List, Optional

from assistant.guide.data import (
    INFORM_CHANNEL, INFORM_WHOM, PAYLOAD_BACK, PAYLOAD_NEXT, PAYLOAD_PROGRESS, PAYLOAD_RESTART,
    PAYLOAD_STOP, PAYLOAD_STUCK, WHOM_VALUES, GuideData, goto_payload, payload,
)


@dataclasses.dataclass
class GuideState:
    """Where a person is in the walk (the action adapter maps it to and from slots)."""

    channel: Optional[str] = None
    for_whom: Optional[str] = None
    step: Optional[int] = None
    active: bool = False
    awaiting: Optional[str] = None


@dataclasses.dataclass
class Reply:
    text: str
    buttons: List[Dict[str, str]] = dataclasses.field(default_factory=list)


def button(title: str, payload_: str) -> Dict[str, str]:
    return {"title": title, "payload": payload_}


class Renderer:
    """Turns state into replies. `links`: the output can show mini-program links
    (WeChat); they are added to the steps that want them when configured."""

    def __init__(self, data: GuideData, links: bool = False):
        self.data = data
        self.links = links

    def header(self, state: GuideState) -> str:
        label = self.data.channel_name(state.channel)
        if state.for_whom and self.data.asks_for_whom(state.channel):
            label += "·" + self.data.whom_name(state.for_whom)
        return self.data.phrase("header", label=label)

    def where(self, state: GuideState) -> str:
        return self.data.phrase("where", header=self.header(state), step=state.step)

    def step(self, state: GuideState, prefix: str = "") -> Reply:
        data, whom = self.data, state.for_whom
        total = data.step_count(state.channel)
        step = data.step(state.channel, state.step)
        lines = []
        if prefix:
            lines.append(prefix)
        lines.append(data.phrase("step_header", header=self.header(state), number=step.number,
                                 total=total, title=step.title()))
        tap = step.tap(whom)
        unverified = not step.raw.get("verified") and not tap
        lines.append(step.text(whom) + (data.text("unverified_note") if unverified else ""))
        if tap:
            joiner = data.phrase("tap_or" if step.tap_alternatives else "tap_separator")
            labels = joiner.join(data.phrase("tap_label", label=label) for label in tap)
            lines.append(data.phrase("tap", labels=labels, caveat=data.caveat))
        tip = step.tip(whom)
        if tip:
            lines.append(data.phrase("tip", tip=tip))
        if step.problems:
            titles = "、".join(str(data.problems[key]["title"]) for key in step.problems)
            lines.append(data.phrase("step_problems", titles=titles))
        link = self.miniprogram_link() if step.wants_miniprogram_link else ""
        if link:
            lines.append(link)
        # Always the same buttons in the same order: on WeChat they are numbered lines, and
        # "1 下一步, 2 上一步 …" should not shift from one step to the next.
        buttons = [
            button(data.button("last" if step.number == total else "next"), PAYLOAD_NEXT),
            button(data.button("back"), PAYLOAD_BACK),
            button(data.button("stuck"), PAYLOAD_STUCK),
            button(data.button("restart"), PAYLOAD_RESTART),
            button(data.button("stop"), PAYLOAD_STOP),
        ]
        return Reply("\n".join(lines), buttons)

    def miniprogram_link(self) -> str:
        config = self.data.miniprogram_link()
        if not self.links or not config:
            return ""
        appid, path, fallback, label = config
        return (
            f'<a href="{fallback}" data-miniprogram-appid="{appid}" '
            f'data-miniprogram-path="{path}">{label}</a>'
        )

    def channel_buttons(self) -> List[Dict[str, str]]:
        """One button per channel, the recommended (default) one first."""
        data = self.data
        order = [data.default_channel] + [c for c in data.channels if c != data.default_channel]
        return [button(str(data.channels[c].get("button", c)), payload(INFORM_CHANNEL, guide_channel=c))
                for c in order]

    def choose_channel(self, prefix: str = "") -> Reply:
        """One recommendation in a line, the channels as buttons."""
        data = self.data
        lines = [prefix] if prefix else []
        lines.append(data.text("choose_channel", "text"))
        footer = data.text("choose_channel", "footer")
        if footer:
            lines.append(footer)
        return Reply("\n".join(lines), self.channel_buttons())

    def overview(self) -> Reply:
        """The whole process in a few numbered lines, then the walk offered."""
        data = self.data
        return Reply(data.text("overview", "text") + "\n" + data.text("overview", "ask"),
                     self.channel_buttons())

    def whom_question(self, state: GuideState) -> Reply:
        """At the step where the app asks 本人 / 为他人: the step's heading and the question."""
        data = self.data
        step = data.step(state.channel, state.step)
        text = data.phrase("whom_question", header=self.header(state), number=step.number,
                           total=data.step_count(state.channel), title=step.title(),
                           question=data.text("choose_for_whom", "text"))
        buttons = [
            button(data.text("for_whom", whom, "button", default=whom), payload(INFORM_WHOM, guide_for_whom=whom))
            for whom in WHOM_VALUES
        ]
        return Reply(text, buttons)

    def offer_resume(self, state: GuideState, prefix: str = "") -> Reply:
        data = self.data
        if state.channel and state.step:
            text = prefix + data.phrase("resume_step", step=state.step)
            buttons = [button(data.button("continue_step", step=state.step), goto_payload(state.step)),
                       button(data.button("stop"), PAYLOAD_STOP)]
        else:
            text = prefix + data.phrase("resume")
            buttons = [button(data.button("continue"), PAYLOAD_NEXT), button(data.button("stop"), PAYLOAD_STOP)]
        return Reply(text, buttons)

    def finish(self) -> Reply:
        data = self.data
        return Reply(
            data.text("finish", "text"),
            [button(data.button("progress"), PAYLOAD_PROGRESS), button(data.button("restart"), PAYLOAD_RESTART)],
        )

    def paused(self, state: GuideState) -> Reply:
        if state.channel and state.step:
            return Reply(self.data.phrase("paused_at", where=self.where(state)))
        return Reply(self.data.phrase("exited"))
