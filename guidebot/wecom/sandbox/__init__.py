"""A local double of WeCom (API, limits, encrypted callbacks) for every configured tenant."""

from guidebot.wecom.sandbox.app import create_sandbox_app, serve
from guidebot.wecom.sandbox.sandbox import Sandbox
from guidebot.wecom.sandbox.webio import SANDBOX_KEY

__all__ = ["SANDBOX_KEY", "Sandbox", "create_sandbox_app", "serve"]
