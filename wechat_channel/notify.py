"""Status-change notifications to WeChat subscribers (issue 19). No Rasa, no wording.

The progress system reports a change (core/status_events.py: a signed event, checked by the
channel's route in channels/wechat.py); `StatusNotifier.notify` tells every subscriber of
the number (core/status_subscriptions.py), each change once:

1. claim (subscriber, status, updated_at) in the shared store: taken → nothing (a
   redelivered event, another replica);
2. within WeChat's 48 h window (the user's last message, state.py `within_window`): a
   customer-service text; 45015 (window closed) / 45047 (quota) / 48001 → step 3;
3. a template message when WECHAT_STATUS_TEMPLATE_ID is set; else nothing, logged;
4. 43004 (the user does not follow the account) ends the subscription; a passing error
   (network, token) gives the claim back so that a redelivered event may try again;
5. a final status ends the subscription after its message.

What is sent: the masked number, the status label, how to see details (the lookup) —
`wording(masked_number, status_label)` gives (text, details hint) in the caller's words.
"""
import asyncio
import collections
import functools
import logging
from typing import Callable, Dict, Optional, Sequence, Tuple

from core.formats import STATUS_LABELS
from core.privacy import mask_application_no
from core.status_events import StatusEvent
from core.status_subscriptions import FINAL_STATUSES, Subscription, SubscriptionStore

from .api_client import SendResult, WeChatApiClient, mask_openid
from .state import StateStore

logger = logging.getLogger(__name__)

Wording = Callable[[str, str], Tuple[str, str]]
# errors after which the template message is tried
TRY_TEMPLATE = ("window", "quota", "no_permission")


class StatusNotifier:
    def __init__(self, store: SubscriptionStore, api: Optional[WeChatApiClient],
                 state: StateStore, wording: Wording, template_id: Optional[str] = None,
                 template_keys: Sequence[str] = ("keyword1", "keyword2", "remark"),
                 passive_only: bool = False):
        self.store = store
        self.api = api
        self.state = state
        self.wording = wording
        self.template_id = template_id
        self.template_keys = tuple(template_keys)
        self.passive_only = passive_only

    async def _db(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(function, *args))

    async def notify(self, event: StatusEvent) -> Dict[str, int]:
        """Tell every subscriber of the event's number; the count of each outcome."""
        counts: Dict[str, int] = collections.Counter()
        subscribers = await self._db(self.store.subscribers, event.application_no)
        masked = mask_application_no(event.application_no)
        label = STATUS_LABELS.get(event.status, event.status)
        for subscription in subscribers:
            try:
                outcome = await self._tell(subscription, event, masked, label)
            except Exception:  # one subscriber's failure never stops the others
                logger.exception("status notification to %s failed",
                                 mask_openid(subscription.openid))
                outcome = "failed"
            counts[outcome] += 1
        logger.info("status change of %s to %s: %s", masked, event.status,
                    dict(counts) or "no subscribers")
        return dict(counts)

    async def _tell(self, subscription: Subscription, event: StatusEvent, masked: str,
                    label: str) -> str:
        if event.status == subscription.status:
            return "unchanged"  # what the person last heard or looked up
        if not await self._db(self.store.claim, subscription, event.status, event.updated_at):
            return "duplicate"
        who = mask_openid(subscription.openid)
        outcome = await self._send(subscription, masked, label)
        if outcome == "failed":
            await self._db(self.store.release, subscription, event.status, event.updated_at)
            logger.warning("status change of %s not told to %s (passing error; a redelivery "
                           "may try again)", masked, who)
            return outcome
        if outcome == "unfollowed":
            await self._db(self.store.drop, subscription.openid, subscription.application_no)
            logger.info("status subscription of %s to %s ended: the user does not follow "
                        "the account (43004)", who, masked)
        elif event.status in FINAL_STATUSES:
            await self._db(self.store.drop, subscription.openid, subscription.application_no)
        if outcome == "not_sent":
            logger.warning("status change of %s not sent to %s: outside the 48 h window and "
                           "no WECHAT_STATUS_TEMPLATE_ID", masked, who)
        # last: once the outcome shows, the subscription and its log are as they stay
        await self._db(self.store.settle, subscription, event.status, event.updated_at, outcome)
        return outcome

    async def _send(self, subscription: Subscription, masked: str, label: str) -> str:
        """sent | template | not_sent | unfollowed | failed"""
        if self.api is None:
            return "not_sent"
        openid = subscription.openid
        text, hint = self.wording(masked, label)
        if not self.passive_only and await self.state.within_window(openid):
            result = await self.api.send_text(openid, text)
            if result.ok:
                return "sent"
            if result.kind not in TRY_TEMPLATE:
                return self._failure(result)
        if not self.template_id:
            return "not_sent"
        number_key, status_key, hint_key = self.template_keys
        result = await self.api.send_template(openid, self.template_id, {
            number_key: masked, status_key: label, hint_key: hint})
        if result.ok:
            return "template"
        if result.kind in ("error", "token", "unfollowed"):
            return self._failure(result)
        return "not_sent"  # a template this account does not have, a quota: logged by the client

    @staticmethod
    def _failure(result: SendResult) -> str:
        return "unfollowed" if result.kind == "unfollowed" else "failed"
