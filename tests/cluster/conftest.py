"""The cluster tests use the WeChat fakes of tests/wechat (FakeWeChat)."""
import pathlib
import sys

WECHAT_TESTS = str(pathlib.Path(__file__).resolve().parent.parent / "wechat")
if WECHAT_TESTS not in sys.path:
    sys.path.insert(0, WECHAT_TESTS)
