"""Status-change subscriptions (issue 19): who wants to hear when an application's status
changes, and which changes were already told. docs/operations.md "Status-change
notifications" has the whole flow.

The action server writes an *offer* after a successful progress lookup in WeChat (the
OpenID, the number just verified, its status); the WeChat channel turns it into a
*subscription* when the person picks "通知我", drops them on "取消通知", and reads them when
the progress system reports a change. Both open the same store: SQLite under .state/ by
default, any SQLAlchemy URL (PostgreSQL in production) from
STATUS_SUBSCRIPTIONS_DATABASE_URL, as core/conversation_codes.py does.

- The OpenID is kept as is: the notification is sent to it. It is never logged unmasked
  (wechat_channel.api_client.mask_openid). No name, no ID suffix is stored.
- One subscription per (OpenID, number); it ends when the application reaches a final
  status (after that message) or after SUBSCRIPTION_DAYS.
- An offer is good for OFFER_SECONDS: a "通知我" tapped later asks for a new lookup.
- Exactly once: `claim` inserts (OpenID, number, status, updated_at) under a unique key
  before anything is sent, so a redelivered event or a second replica finds it taken.

The widget's part (docs/web.md "Status changes"): a *watch* is a random token the browser
keeps (localStorage) for a number a visitor looked up. The action writes an offer under
the widget's sender id as for WeChat; the web channel turns it into a watch on the way out
(`start_watch`) and gives the token to the widget, never to the tracker store. Only the
token's SHA-256 is stored (tokens are random: a plain hash cannot be reversed), with the
number, the status the visitor saw and the latest status an event reported.
`record_status` (any channel's event route) updates the latter; `watch_changes` (the
widget's next visit) tells each change once. A watch ends after 90 days, after its final
status was seen, or on "取消通知".
"""
import dataclasses
import hashlib
import os
import secrets
import threading
import time
from typing import Callable, Iterable, List, Mapping, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core import defaults
from core.private_files import private_database_file

DATABASE_URL_ENV = "STATUS_SUBSCRIPTIONS_DATABASE_URL"
DEFAULT_DATABASE_URL = f"sqlite:///{defaults.STATE_DIR / 'status-subscriptions.db'}"

SUBSCRIPTION_DAYS = 90
SUBSCRIPTION_SECONDS = SUBSCRIPTION_DAYS * 24 * 3600
OFFER_SECONDS = 30 * 60
# a told change is remembered as long as a subscription can live (redelivery is rare and
# early, but a subscription of the same pair may be made again meanwhile)
CLAIM_KEEP_SECONDS = SUBSCRIPTION_SECONDS
# statuses after which nothing changes any more: the subscription ends with their message
FINAL_STATUSES = frozenset({"approved", "rejected", "withdrawn"})

# The numbered choice after a lookup in WeChat (actions/progress.py offers it); the channel
# handles a tapped line itself and never runs the bot on it, like the feedback ratings.
SUBSCRIBE_PAYLOAD, DECLINE_PAYLOAD = "/subscribe_status", "/subscribe_status_no"
PAYLOADS = (SUBSCRIBE_PAYLOAD, DECLINE_PAYLOAD)

# Typed to stop every status-change notification (any channel; answered before NLU).
CANCEL_COMMANDS = frozenset({"取消通知", "取消提醒", "不要通知", "关闭通知"})
# The widget's watch tokens (secrets.token_urlsafe(WATCH_TOKEN_BYTES): 32 characters).
WATCH_TOKEN_BYTES = 24
WATCH_TOKEN_MAX_CHARS = 64
MAX_WATCHES_PER_BROWSER = 3
# The action's marker after a found lookup in the widget (a custom JSON message, kept in
# the tracker store as is); the web channel replaces it by {"status_watch": {"token": …}}.
WATCH_KEY, WATCH_OFFER = "status_watch", "offer"

metadata = sa.MetaData()
offers_table = sa.Table(
    "status_offers", metadata,
    sa.Column("openid", sa.String(128), primary_key=True),
    sa.Column("application_no", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("offered_at", sa.Float, nullable=False, index=True),
)
subscriptions_table = sa.Table(
    "status_subscriptions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("openid", sa.String(128), nullable=False, index=True),
    sa.Column("application_no", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(32), nullable=False),  # when subscribed
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.UniqueConstraint("openid", "application_no", name="uq_status_subscription_pair"),
)
claims_table = sa.Table(
    "status_notifications", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("openid", sa.String(128), nullable=False),
    sa.Column("application_no", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(64), nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=False, index=True),
    sa.Column("outcome", sa.String(32), nullable=False, default="claimed"),
    sa.UniqueConstraint("openid", "application_no", "status", "updated_at",
                        name="uq_status_notification"),
)

watches_table = sa.Table(
    "status_watches", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # hex SHA-256 of the token
    sa.Column("application_no", sa.String(64), nullable=False, index=True),
    sa.Column("seen_status", sa.String(32), nullable=False),  # what the visitor last saw
    sa.Column("status", sa.String(32), nullable=False),  # the latest an event reported
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)


def watch_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def sane_watch_token(token: object) -> bool:
    """What a browser may send as a token: URL-safe base64, of a sane length."""
    return (isinstance(token, str) and 16 <= len(token) <= WATCH_TOKEN_MAX_CHARS
            and all(c.isascii() and (c.isalnum() or c in "-_") for c in token))


@dataclasses.dataclass(frozen=True)
class WatchChange:
    token: str
    application_no: str
    status: str


@dataclasses.dataclass(frozen=True)
class Subscription:
    openid: str
    application_no: str
    status: str
    created_at: float
    expires_at: float


def database_url(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


class SubscriptionStore:
    """Blocking (SQLAlchemy): async callers run it in a thread. `clock` for tests."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time):
        self.url = url
        self.clock = clock
        self._lock = threading.Lock()
        private_database_file(url)
        self.engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        metadata.create_all(self.engine)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ,
                 clock: Callable[[], float] = time.time) -> "SubscriptionStore":
        return cls(database_url(environ), clock=clock)

    # --- the offer (action server) -------------------------------------------------------
    def offer(self, openid: str, application_no: str, status: str) -> None:
        """Remember what the person just looked up, for their answer (the latest only)."""
        now = self.clock()
        table = offers_table
        with self._lock, self.engine.begin() as db:
            db.execute(table.delete().where(
                sa.or_(table.c.openid == openid, table.c.offered_at < now - OFFER_SECONDS)))
            db.execute(table.insert().values(openid=openid, application_no=application_no,
                                             status=status, offered_at=now))

    def accept(self, openid: str) -> Optional[str]:
        """Subscribe to the offered number: the number, or None when no offer is fresh.
        Again for the same pair renews it (one row per pair). The offer stays until it
        expires, so the same line tapped twice says the same."""
        try:
            return self._accept(openid)
        except IntegrityError:  # another replica inserted the pair meanwhile: renew it
            return self._accept(openid)

    def _accept(self, openid: str) -> Optional[str]:
        now = self.clock()
        table = subscriptions_table
        with self._lock, self.engine.begin() as db:
            offer = db.execute(sa.select(offers_table).where(
                offers_table.c.openid == openid,
                offers_table.c.offered_at >= now - OFFER_SECONDS)).first()
            if offer is None:
                return None
            values = dict(status=offer.status, created_at=now,
                          expires_at=now + SUBSCRIPTION_SECONDS)
            pair = (table.c.openid == openid, table.c.application_no == offer.application_no)
            if not db.execute(table.update().where(*pair).values(**values)).rowcount:
                db.execute(table.insert().values(
                    openid=openid, application_no=offer.application_no, **values))
            return offer.application_no

    def decline(self, openid: str) -> None:
        with self._lock, self.engine.begin() as db:
            db.execute(offers_table.delete().where(offers_table.c.openid == openid))

    # --- unsubscribe ---------------------------------------------------------------------
    def cancel(self, openid: str) -> int:
        """"取消通知": every subscription of this OpenID ends (and any open offer)."""
        with self._lock, self.engine.begin() as db:
            db.execute(offers_table.delete().where(offers_table.c.openid == openid))
            return db.execute(subscriptions_table.delete().where(
                subscriptions_table.c.openid == openid)).rowcount

    def drop(self, openid: str, application_no: str) -> None:
        """One subscription ends (final status, or the user cannot be reached: 43004)."""
        table = subscriptions_table
        with self._lock, self.engine.begin() as db:
            db.execute(table.delete().where(table.c.openid == openid,
                                            table.c.application_no == application_no))

    # --- notifying -----------------------------------------------------------------------
    def subscribers(self, application_no: str) -> List[Subscription]:
        table = subscriptions_table
        with self.engine.connect() as db:
            rows = db.execute(sa.select(table).where(
                table.c.application_no == application_no,
                table.c.expires_at > self.clock()).order_by(table.c.id)).fetchall()
        return [Subscription(row.openid, row.application_no, row.status, row.created_at,
                             row.expires_at) for row in rows]

    def subscriptions_of(self, openid: str) -> List[Subscription]:
        table = subscriptions_table
        with self.engine.connect() as db:
            rows = db.execute(sa.select(table).where(
                table.c.openid == openid, table.c.expires_at > self.clock())
                .order_by(table.c.id)).fetchall()
        return [Subscription(row.openid, row.application_no, row.status, row.created_at,
                             row.expires_at) for row in rows]

    def claim(self, subscription: Subscription, status: str, updated_at: str) -> bool:
        """True for the first caller for this change of this subscription, before sending."""
        try:
            with self.engine.begin() as db:
                db.execute(claims_table.insert().values(
                    openid=subscription.openid, application_no=subscription.application_no,
                    status=status, updated_at=updated_at, claimed_at=self.clock(),
                    outcome="claimed"))
        except IntegrityError:
            return False
        return True

    def settle(self, subscription: Subscription, status: str, updated_at: str,
               outcome: str) -> None:
        """What became of a claimed change (sent, template, not_sent…), for operators; the
        subscription's status becomes this one (a change back to it is a change again)."""
        table = claims_table
        with self.engine.begin() as db:
            db.execute(table.update().where(
                table.c.openid == subscription.openid,
                table.c.application_no == subscription.application_no,
                table.c.status == status, table.c.updated_at == updated_at,
            ).values(outcome=outcome[:32]))
            db.execute(subscriptions_table.update().where(
                subscriptions_table.c.openid == subscription.openid,
                subscriptions_table.c.application_no == subscription.application_no,
            ).values(status=status))

    def release(self, subscription: Subscription, status: str, updated_at: str) -> None:
        """Give a claim back (nothing went out because of a passing error): a redelivered
        event may try again."""
        table = claims_table
        with self.engine.begin() as db:
            db.execute(table.delete().where(
                table.c.openid == subscription.openid,
                table.c.application_no == subscription.application_no,
                table.c.status == status, table.c.updated_at == updated_at))

    def outcomes(self, application_no: str) -> List[str]:
        """The outcomes of the changes told for a number (tests, diagnostics)."""
        table = claims_table
        with self.engine.connect() as db:
            return [row.outcome for row in db.execute(
                sa.select(table.c.outcome).where(table.c.application_no == application_no)
                .order_by(table.c.id))]

    # --- the widget's watches (web channel) ---------------------------------------------
    def start_watch(self, sender_id: str) -> Optional[str]:
        """The offer the action just wrote for this widget session becomes a watch: its new
        random token (given to the browser only), or None when there is no fresh offer.
        The offer is used up: a second call gives nothing."""
        now = self.clock()
        token = secrets.token_urlsafe(WATCH_TOKEN_BYTES)
        with self._lock, self.engine.begin() as db:
            offer = db.execute(sa.select(offers_table).where(
                offers_table.c.openid == sender_id,
                offers_table.c.offered_at >= now - OFFER_SECONDS)).first()
            if offer is None:
                return None
            db.execute(offers_table.delete().where(offers_table.c.openid == sender_id))
            db.execute(watches_table.insert().values(
                token_hash=watch_token_hash(token), application_no=offer.application_no,
                seen_status=offer.status, status=offer.status, created_at=now,
                expires_at=now + SUBSCRIPTION_SECONDS))
        return token

    def record_status(self, application_no: str, status: str) -> int:
        """An event's new status for every live watch of the number: how many."""
        table = watches_table
        with self._lock, self.engine.begin() as db:
            return db.execute(table.update().where(
                table.c.application_no == application_no,
                table.c.expires_at > self.clock()).values(status=status)).rowcount

    def watch_changes(self, tokens: Iterable[str]) -> Tuple[List[WatchChange], List[str]]:
        """(changes not yet seen, tokens to forget). Each change is told once: it is marked
        seen here (a conditional update, so two visits at once tell it once). A token with
        no live watch is to be forgotten, and so is one whose final status is now seen
        (its watch ends)."""
        table = watches_table
        changes: List[WatchChange] = []
        forget: List[str] = []
        now = self.clock()
        with self._lock, self.engine.begin() as db:
            for token in tokens:
                key = watch_token_hash(token)
                row = db.execute(sa.select(table).where(
                    table.c.token_hash == key, table.c.expires_at > now)).first()
                if row is None:
                    forget.append(token)
                    continue
                if row.status != row.seen_status and db.execute(table.update().where(
                        table.c.token_hash == key, table.c.seen_status == row.seen_status,
                        table.c.status == row.status).values(seen_status=row.status)).rowcount:
                    changes.append(WatchChange(token, row.application_no, row.status))
                if row.status in FINAL_STATUSES:
                    db.execute(table.delete().where(table.c.token_hash == key))
                    forget.append(token)
        return changes, forget

    def forget_watches(self, tokens: Iterable[str]) -> int:
        """"取消通知" in the widget: these watches end."""
        keys = [watch_token_hash(token) for token in tokens]
        if not keys:
            return 0
        with self._lock, self.engine.begin() as db:
            return db.execute(watches_table.delete().where(
                watches_table.c.token_hash.in_(keys))).rowcount

    # --- retention -----------------------------------------------------------------------
    def purge(self) -> int:
        """Expired subscriptions, watches and offers, claims older than CLAIM_KEEP_SECONDS."""
        now = self.clock()
        with self._lock, self.engine.begin() as db:
            removed = db.execute(subscriptions_table.delete().where(
                subscriptions_table.c.expires_at <= now)).rowcount
            removed += db.execute(watches_table.delete().where(
                watches_table.c.expires_at <= now)).rowcount
            removed += db.execute(offers_table.delete().where(
                offers_table.c.offered_at < now - OFFER_SECONDS)).rowcount
            removed += db.execute(claims_table.delete().where(
                claims_table.c.claimed_at < now - CLAIM_KEEP_SECONDS)).rowcount
        return removed

    def close(self) -> None:
        self.engine.dispose()
