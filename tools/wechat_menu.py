"""`make wechat-menu`: create the official account's custom menu from knowledge/wechat_menu.yml.

The menu's `buttons:` become the body of WeChat's POST /cgi-bin/menu/create, sent through
the channel's API client (stable access token, token errors retried once). Settings are the
channel's own environment variables (wechat_channel/config.py): WECHAT_APPID and
WECHAT_APPSECRET (required), WECHAT_API_BASE and WECHAT_MENU (optional).

Exit status: 0 when WeChat answers errcode 0; 1 on a WeChat error (the errcode is printed);
2 when a setting is missing or the menu file is wrong.
"""
import argparse
import asyncio
import json
import os
import pathlib
import sys
from typing import Mapping, Optional, Sequence

from wechat_channel.api_client import WeChatApiClient
from wechat_channel.config import DEFAULT_API_BASE, ENV_VARS, ROOT
from wechat_channel.menu import MenuError, load_menu


def _setting(environ: Mapping[str, str], key: str) -> Optional[str]:
    return (environ.get(ENV_VARS[key]) or "").strip() or None


async def _create(api_base: str, appid: str, appsecret: str, body: dict):
    client = WeChatApiClient(api_base, appid, appsecret)
    try:
        return await client.create_menu(body)
    finally:
        await client.close()


def main(argv: Optional[Sequence[str]] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="print the JSON body and do not call WeChat")
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    menu_path = pathlib.Path(_setting(environ, "menu") or ROOT / "knowledge" / "wechat_menu.yml")
    if not menu_path.is_absolute():
        menu_path = ROOT / menu_path
    try:
        body = load_menu(menu_path).create_body()
    except MenuError as error:
        print(f"wechat-menu: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    appid, appsecret = _setting(environ, "appid"), _setting(environ, "appsecret")
    missing = [ENV_VARS[key] for key, value in (("appid", appid), ("appsecret", appsecret))
               if not value]
    if missing:
        print(f"wechat-menu: set {' and '.join(missing)} (the account's AppID and AppSecret; "
              "docs/wechat.md)", file=sys.stderr)
        return 2
    api_base = _setting(environ, "api_base") or DEFAULT_API_BASE
    result = asyncio.run(_create(api_base, appid, appsecret, body))
    if not result.ok:
        print(f"wechat-menu: WeChat refused the menu: errcode {result.errcode} ({result.kind}); "
              "-1 means WeChat could not be reached", file=sys.stderr)
        return 1
    print(f"wechat-menu: menu created from {menu_path} ({len(body['button'])} buttons)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
