"""Signatures and AES against WeChat's official vectors (PROTOCOL.md A and C) and wechatpy."""
import base64

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException

from wechat_channel.crypto import AppIdMismatch, CryptoError, MessageCrypto
from wechat_channel.messages import parse_xml, render_encrypted_envelope
from wechat_channel.signature import check_msg_signature, check_signature, is_fresh, sign

# Vector A: Tencent's WXBizMsgCrypt sample, official account, compatible mode
A_TOKEN, A_KEY, A_APPID = "spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2"
A_TIMESTAMP, A_NONCE = "1409735669", "1320562132"
A_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
A_SIGNATURE = "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
A_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmO"
    "D2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIb"
    "gU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/"
    "HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669"
    "WuMyVWQLCzpu9GhglF2PE="
)
A_PLAINTEXT = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
    "<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>"
)
A_PREFIX = b"89465c840c5f116f"

# Vector C: official message-push documentation, safe mode, 19 bytes of padding
C_TOKEN, C_KEY, C_APPID = "AAAAA", "A" * 43, "wxba5fad812f8e6fb9"
C_TIMESTAMP, C_NONCE = "1714112445", "415670741"
C_MSG_SIGNATURE = "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
C_ENCRYPT = (
    "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzaz"
    "hZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSq"
    "FIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="
)
C_PLAINTEXT = ('{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY",'
               '"CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}')
C_REPLY_PREFIX, C_REPLY_MSG = b"707722b803182950", '{"demo_resp":"good luck"}'
C_REPLY_TIMESTAMP, C_REPLY_NONCE = "1713424427", "415670741"
C_REPLY_ENCRYPT = "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
C_REPLY_SIGNATURE = "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"
C_GET_TIMESTAMP, C_GET_NONCE = "1714036504", "1514711492"
C_GET_SIGNATURE = "f464b24fc39322e44b38aa78f5edd27bd1441696"


def test_vector_a_signatures():
    assert check_msg_signature(A_TOKEN, A_TIMESTAMP, A_NONCE, A_ENCRYPT, A_MSG_SIGNATURE)
    assert check_signature(A_TOKEN, A_TIMESTAMP, A_NONCE, A_SIGNATURE)
    assert not check_signature(A_TOKEN, A_TIMESTAMP, A_NONCE, A_MSG_SIGNATURE)
    assert not check_msg_signature(A_TOKEN, A_TIMESTAMP, A_NONCE, A_ENCRYPT[:-4] + "AAA=",
                                   A_MSG_SIGNATURE)


def test_vector_a_decrypts_and_reencrypts_exactly():
    crypto = MessageCrypto(A_KEY, A_APPID)
    assert crypto.decrypt(A_ENCRYPT).decode("utf-8") == A_PLAINTEXT
    assert crypto.encrypt(A_PLAINTEXT, random_prefix=A_PREFIX) == A_ENCRYPT


def test_vector_a_checks_the_appid():
    with pytest.raises(AppIdMismatch):
        MessageCrypto(A_KEY, "wx0000000000000000").decrypt(A_ENCRYPT)


def test_vector_c_decrypts_with_19_bytes_of_padding():
    assert check_msg_signature(C_TOKEN, C_TIMESTAMP, C_NONCE, C_ENCRYPT, C_MSG_SIGNATURE)
    crypto = MessageCrypto(C_KEY, C_APPID)
    assert crypto.decrypt(C_ENCRYPT).decode("utf-8") == C_PLAINTEXT
    # the padding really is 19 bytes: more than one 16-byte block
    raw = Cipher(algorithms.AES(crypto.key), modes.CBC(crypto.key[:16])).decryptor()
    plain = raw.update(base64.b64decode(C_ENCRYPT)) + raw.finalize()
    assert plain[-19:] == bytes([19]) * 19
    # ...which is why a 16-byte PKCS#7 unpadder rejects genuine WeChat traffic
    unpadder = padding.PKCS7(128).unpadder()
    with pytest.raises(ValueError):
        unpadder.update(plain) + unpadder.finalize()


def test_vector_c_reply_envelope_is_reproduced():
    crypto = MessageCrypto(C_KEY, C_APPID)
    encrypt = crypto.encrypt(C_REPLY_MSG, random_prefix=C_REPLY_PREFIX)
    assert encrypt == C_REPLY_ENCRYPT
    msg_signature = sign(C_TOKEN, C_REPLY_TIMESTAMP, C_REPLY_NONCE, encrypt)
    assert msg_signature == C_REPLY_SIGNATURE
    envelope = parse_xml(render_encrypted_envelope(
        encrypt, msg_signature, C_REPLY_TIMESTAMP, C_REPLY_NONCE).encode())
    assert envelope == {"Encrypt": C_REPLY_ENCRYPT, "MsgSignature": C_REPLY_SIGNATURE,
                        "TimeStamp": C_REPLY_TIMESTAMP, "Nonce": C_REPLY_NONCE}


def test_vector_c_url_check_signature():
    assert check_signature(C_TOKEN, C_GET_TIMESTAMP, C_GET_NONCE, C_GET_SIGNATURE)
    assert check_signature(C_TOKEN, C_GET_TIMESTAMP, C_GET_NONCE, C_GET_SIGNATURE.upper())
    assert not check_signature(C_TOKEN, C_GET_TIMESTAMP, "1514711493", C_GET_SIGNATURE)
    assert not check_signature(C_TOKEN, C_GET_TIMESTAMP, C_GET_NONCE, None)


def test_timestamps_more_than_five_minutes_off_are_stale():
    now = 1_714_000_000
    assert is_fresh(str(now - 300), now) and is_fresh(str(now + 300), now)
    assert not is_fresh(str(now - 301), now) and not is_fresh(str(now + 301), now)
    assert not is_fresh("", now) and not is_fresh("12a", now) and not is_fresh(None, now)


def _messages():
    samples = ["你好", "😀", "门诊慢特病（原特殊病种）申请要带身份证、医保卡 🏥👍", "a]]>b<&>"]
    # plaintext = 16 + 4 + len(msg) + 18 (appid) bytes: cover every remainder mod 32
    for length in range(0, 70):
        samples.append("x" * length)
    for length in (26, 27, 28, 58, 59, 60, 90):  # ASCII around block boundaries, then CJK/emoji
        samples.append("特" * (length // 3) + "x" * (length % 3))
        samples.append("😀" * (length // 4) + "y" * (length % 4))
    return samples


@pytest.mark.parametrize("message", _messages())
def test_round_trips_with_wechatpy_both_ways(message):
    ours = MessageCrypto(A_KEY, A_APPID)
    theirs = WeChatCrypto(A_TOKEN, A_KEY, A_APPID)
    # ours -> wechatpy: build an envelope as our endpoint does, let wechatpy check and open it
    encrypt = ours.encrypt(message)
    envelope = render_encrypted_envelope(encrypt, sign(A_TOKEN, A_TIMESTAMP, A_NONCE, encrypt),
                                         A_TIMESTAMP, A_NONCE)
    assert theirs.decrypt_message(envelope, sign(A_TOKEN, A_TIMESTAMP, A_NONCE, encrypt),
                                  A_TIMESTAMP, A_NONCE) == message
    # wechatpy -> ours
    their_envelope = parse_xml(theirs.encrypt_message(message, A_NONCE, A_TIMESTAMP).encode())
    assert check_msg_signature(A_TOKEN, A_TIMESTAMP, A_NONCE, their_envelope["Encrypt"],
                               their_envelope["MsgSignature"])
    assert ours.decrypt(their_envelope["Encrypt"]).decode("utf-8") == message


def test_wechatpy_rejects_our_ciphertext_for_another_appid():
    encrypt = MessageCrypto(A_KEY, "wx_other_account").encrypt("你好")
    envelope = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    with pytest.raises(InvalidAppIdException):
        WeChatCrypto(A_TOKEN, A_KEY, A_APPID).decrypt_message(
            envelope, sign(A_TOKEN, A_TIMESTAMP, A_NONCE, encrypt), A_TIMESTAMP, A_NONCE)


@pytest.mark.parametrize("bad", ["not base64!!", base64.b64encode(b"x" * 15).decode(),
                                 base64.b64encode(b"\0" * 32).decode(), ""])
def test_garbage_ciphertext_raises_crypto_error(bad):
    with pytest.raises(CryptoError):
        MessageCrypto(A_KEY, A_APPID).decrypt(bad)


def test_tampered_ciphertext_is_rejected():
    raw = bytearray(base64.b64decode(A_ENCRYPT))
    raw[-1] ^= 0x01  # breaks the padding of the last block
    with pytest.raises(CryptoError):
        MessageCrypto(A_KEY, A_APPID).decrypt(base64.b64encode(bytes(raw)).decode())
