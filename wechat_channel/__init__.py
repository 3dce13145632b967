"""WeChat official-account (公众号) channel.

Protocol modules (no Rasa, no sanic inside; testable on their own):
    config       settings from WECHAT_* variables / credentials.yml
    signature    SHA-1 request signatures and timestamp freshness
    crypto       AES-256-CBC message encryption (32-byte PKCS#7 blocks)
    messages     XML parsing (defusedxml), passive replies, CDATA escaping, byte splitting
    menu         knowledge/wechat_menu.yml: welcome menu and CLICK keys
    api_client   customer-service message API and stable access token (aiohttp)
    delivery     retry dedupe (once per message, across replicas with a shared store),
                 button choice, held-reply order and limit
    state        where that state lives: this process (default) or Redis (replicas),
                 with the signed URLs already seen (replay protection)
    endpoint     one request in, one response out: the whole protocol

Transport: channels/wechat.py (WeChatInput) is the thin Rasa InputChannel over
endpoint.WeChatEndpoint; it passes in the texts and the menu from knowledge/.
"""
