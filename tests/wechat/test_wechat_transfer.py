"""The human route on WeChat: with WECHAT_TRANSFER_TO_KF on, a typed request for a person is
answered with WeChat's transfer_customer_service passive reply (checked against wechatpy's
own rendering); without it, or for a menu click or a late answer, the hotline text."""
import xmltodict
from wechatpy.replies import TransferCustomerServiceReply

from wechat_channel.config import WeChatSettings
from wechat_channel.messages import asks_for_handover, parse_xml, render_transfer_reply

from wechat_fakes import ACCOUNT, TOKEN, event_xml, text_xml

OPENID = "oUserOpenId0000000000000042"
HOTLINE_TEXT = "找人工可以这样：\n1. 拨打12393医保服务热线"
HUMAN_TURN = [{"text": HOTLINE_TEXT}, {"custom": {"handover": "human"}}]


def test_transfer_reply_matches_wechatpy():
    ours = xmltodict.parse(render_transfer_reply(OPENID, ACCOUNT, create_time=1714112445))
    theirs = xmltodict.parse(TransferCustomerServiceReply(
        source=ACCOUNT, target=OPENID, time=1714112445).render())
    assert ours == theirs
    assert ours["xml"]["MsgType"] == "transfer_customer_service"


def test_handover_marker_is_recognised():
    assert asks_for_handover(HUMAN_TURN)
    assert not asks_for_handover([{"text": "x"}, {"custom": {"wechat_text": "y"}}])


def test_setting_comes_from_the_environment():
    assert WeChatSettings.from_env({"WECHAT_TOKEN": TOKEN, "WECHAT_TRANSFER_TO_KF": "true"}).transfer_to_kf
    assert not WeChatSettings.from_env({"WECHAT_TOKEN": TOKEN}).transfer_to_kf


def test_enabled_hands_the_message_to_customer_service(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe", transfer_to_kf=True)
    agent.responses["找人工"] = HUMAN_TURN
    result = fake_wechat.push(text_xml(OPENID, "找人工"), mode="safe", openid=OPENID)
    assert result.status == 200 and b"<Encrypt>" in result.body
    assert len(fake_wechat.transfers) == 1
    transfer = fake_wechat.transfers[0]
    assert (transfer["MsgType"], transfer["ToUserName"], transfer["FromUserName"]) == (
        "transfer_customer_service", OPENID, ACCOUNT)
    assert "Content" not in transfer
    theirs = parse_xml(TransferCustomerServiceReply(
        source=ACCOUNT, target=OPENID, time=int(transfer["CreateTime"])).render().encode())
    assert transfer == theirs
    # an ordinary question still gets its text
    other = fake_wechat.push(text_xml(OPENID, "要带什么"), mode="safe", openid=OPENID)
    assert other.reply["MsgType"] == "text" and len(fake_wechat.transfers) == 1


def test_disabled_sends_the_hotline_text(channel_for, fake_wechat):
    _, agent = channel_for(mode="plain")
    agent.responses["找人工"] = HUMAN_TURN
    result = fake_wechat.push(text_xml(OPENID, "找人工"), mode="plain", openid=OPENID)
    assert result.reply["MsgType"] == "text" and result.content == HOTLINE_TEXT
    assert fake_wechat.transfers == []


def test_menu_click_is_never_transferred(channel_for, fake_wechat):
    # WeChat: only a user's own messages go to 客服, never events such as menu clicks
    _, agent = channel_for(mode="plain", transfer_to_kf=True)
    agent.responses["/ask_human"] = HUMAN_TURN
    result = fake_wechat.push(event_xml(OPENID, "CLICK", "ASK_HUMAN"), mode="plain", openid=OPENID)
    assert result.reply["MsgType"] == "text" and result.content == HOTLINE_TEXT
    assert fake_wechat.transfers == []


def test_late_answer_sends_the_hotline_text(channel_for, fake_wechat):
    _, agent = channel_for(mode="plain", transfer_to_kf=True, reply_deadline=0.3)
    agent.responses["找人工"] = HUMAN_TURN
    agent.delays["找人工"] = 0.8
    result = fake_wechat.push(text_xml(OPENID, "找人工"), mode="plain", openid=OPENID)
    assert result.body == b"success"
    assert fake_wechat.wait_for_messages(OPENID, 1) == [HOTLINE_TEXT]
    assert fake_wechat.transfers == []
