"""WeChat XML in, WeChat XML out: parsing with entity expansion off, passive replies,
CDATA escaping, numbered button lines and splitting long text by UTF-8 bytes."""
import dataclasses
import re
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from xml.etree.ElementTree import ParseError

MAX_REPLY_BYTES = 2048
MESSAGE_SEPARATOR = "\n\n"
# A bot message {"custom": {"handover": "human"}} marks a turn that asks for a person; the
# channel may then hand the user's message to the account's 客服 (render_transfer_reply).
HANDOVER_KEY, HANDOVER_HUMAN = "handover", "human"


class MalformedMessage(ValueError):
    """The body is not a WeChat message we can read (HTTP 400)."""


@dataclasses.dataclass
class IncomingMessage:
    to_user: str
    from_user: str  # the user's OpenID
    create_time: str
    msg_type: str
    content: str = ""
    msg_id: Optional[str] = None
    event: Optional[str] = None
    event_key: Optional[str] = None
    recognition: Optional[str] = None
    menu_id: Optional[str] = None  # bizmsgmenuid of a tapped numbered line
    fields: Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        """WeChat retries carry the same MsgId; events have none: FromUserName + CreateTime
        (+ the event name, so a CLICK and a VIEW in the same second stay apart)."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"evt:{self.from_user}:{self.create_time}:{self.event or ''}"


def parse_xml(body: bytes) -> Dict[str, str]:
    """Top-level fields of `<xml>…</xml>`; no DTDs, no entities, UTF-8 only."""
    if not body or not body.strip():
        raise MalformedMessage("empty body")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage("body is not UTF-8") from exc
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError) as exc:
        raise MalformedMessage(f"unreadable XML ({type(exc).__name__})") from exc
    if root.tag != "xml":
        raise MalformedMessage("root element is not <xml>")
    return {child.tag: (child.text or "") for child in root}


def parse_message(fields: Mapping[str, str]) -> IncomingMessage:
    def get(name: str) -> Optional[str]:
        value = fields.get(name)
        return value if value not in (None, "") else None

    from_user, to_user, msg_type = get("FromUserName"), get("ToUserName"), get("MsgType")
    if not from_user or not to_user or not msg_type:
        raise MalformedMessage("FromUserName, ToUserName and MsgType are required")
    create_time = (get("CreateTime") or "").strip()
    if not create_time.isdigit():
        raise MalformedMessage("CreateTime is not a number")
    return IncomingMessage(
        to_user=to_user,
        from_user=from_user,
        create_time=create_time,
        msg_type=msg_type.strip().lower(),
        content=fields.get("Content") or "",
        msg_id=(get("MsgId") or get("MsgID") or "").strip() or None,
        event=(get("Event") or "").strip().lower() or None,
        event_key=(get("EventKey") or "").strip() or None,
        recognition=(get("Recognition") or "").strip() or None,
        menu_id=(get("bizmsgmenuid") or "").strip() or None,
        fields=dict(fields),
    )


# --- rendering -----------------------------------------------------------------------
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def cdata(text: str) -> str:
    """A CDATA section for any text: `]]>` is split across two sections."""
    text = _XML_INVALID.sub("", text)
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _passive_reply(to_user: str, from_user: str, msg_type: str, body: str,
                   create_time: Optional[int]) -> str:
    return (
        "<xml>"
        f"<ToUserName>{cdata(to_user)}</ToUserName>"
        f"<FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time if create_time is not None else time.time())}</CreateTime>"
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>"
        f"{body}"
        "</xml>"
    )


def render_text_reply(to_user: str, from_user: str, content: str,
                      create_time: Optional[int] = None) -> str:
    """Passive text reply; to_user is the user's OpenID, from_user our gh_ id."""
    return _passive_reply(to_user, from_user, "text", f"<Content>{cdata(content)}</Content>", create_time)


def render_transfer_reply(to_user: str, from_user: str,
                          create_time: Optional[int] = None) -> str:
    """Passive reply that hands the user's message to the account's customer service (客服)."""
    return _passive_reply(to_user, from_user, "transfer_customer_service", "", create_time)


def asks_for_handover(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether one of the turn's bot messages carries the hand-over marker."""
    return any(isinstance(m.get("custom"), Mapping)
               and m["custom"].get(HANDOVER_KEY) == HANDOVER_HUMAN for m in messages)


def render_encrypted_envelope(encrypt: str, msg_signature: str, timestamp: str, nonce: str) -> str:
    return (
        "<xml>"
        f"<Encrypt>{cdata(encrypt)}</Encrypt>"
        f"<MsgSignature>{cdata(msg_signature)}</MsgSignature>"
        f"<TimeStamp>{int(timestamp)}</TimeStamp>"
        f"<Nonce>{cdata(nonce)}</Nonce>"
        "</xml>"
    )


def _menu_safe(text: str) -> str:
    # msgmenucontent sits inside an href="…" whose query uses & as separator
    return re.sub(r'[&"<>\s]+', " ", text).strip()


def render_button_line(index: int, title: str) -> str:
    """A numbered line the user can tap; tapping sends `title` back as the user's text."""
    title = title.strip()
    return (
        f'<a href="weixin://bizmsgmenu?msgmenucontent={_menu_safe(title)}&msgmenuid={index}">'
        f"{index}. {title.replace('<', '＜').replace('>', '＞')}</a>"
    )


Button = Tuple[str, str]  # (title, payload)


def render_bot_messages(messages: Sequence[Mapping[str, Any]]) -> Tuple[str, List[Button]]:
    """All bot messages of one turn as one text, plus the buttons offered (numbered from 1).

    Messages are Rasa's collector dicts: text, buttons [{title, payload}], image,
    attachment, custom. Text is passed through, so `<a href>` and mini-program links work.
    """
    parts: List[str] = []
    buttons: List[Button] = []
    for message in messages:
        text = (message.get("text") or "").strip()
        if text:
            parts.append(text)
        image = message.get("image")
        if image:
            parts.append(f'<a href="{image}">查看图片</a>')
        attachment = message.get("attachment")
        if isinstance(attachment, str) and attachment.startswith(("http://", "https://")):
            parts.append(f'<a href="{attachment}">查看附件</a>')
        custom = message.get("custom")
        if isinstance(custom, Mapping):
            custom_text = custom.get("wechat_text") or custom.get("text")
            if isinstance(custom_text, str) and custom_text.strip():
                parts.append(custom_text.strip())
        lines = []
        for button in message.get("buttons") or []:
            title = str(button.get("title") or "").strip()
            payload = str(button.get("payload") or title).strip()
            if not title:
                continue
            buttons.append((title, payload))
            lines.append(render_button_line(len(buttons), title))
        if lines:
            parts.append("\n".join(lines))
    return MESSAGE_SEPARATOR.join(parts), buttons


# --- splitting -----------------------------------------------------------------------
# A link is never split; any other tag neither; otherwise one character at a time.
_ATOM = re.compile(r"<a\b[^>]*>.*?</a\s*>|<[^<>]*>|.", re.DOTALL | re.IGNORECASE)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def split_utf8(text: str, limit: int = MAX_REPLY_BYTES) -> List[str]:
    """Chunks of at most `limit` UTF-8 bytes, cut at paragraph or line ends where possible,
    never inside a character, a tag or a link."""
    text = text.strip()
    if not text:
        return []
    if _size(text) <= limit:
        return [text]
    chunks: List[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if _size(candidate) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
            current = ""
        if _size(line) <= limit:
            current = line
            continue
        for atom in _ATOM.findall(line):  # a single line longer than the limit
            if _size(current + atom) > limit:
                if current:
                    chunks.append(current)
                current = ""
                if _size(atom) > limit:  # a huge tag: give up on keeping it whole
                    for char in atom:
                        if _size(current + char) > limit:
                            chunks.append(current)
                            current = ""
                        current += char
                    continue
            current += atom
    if current:
        chunks.append(current)
    return [chunk.strip("\n") for chunk in chunks if chunk.strip()]
