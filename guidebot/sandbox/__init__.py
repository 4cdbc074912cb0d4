"""A local double of WeCom (API, limits, encrypted callbacks) for every configured tenant."""

from guidebot.sandbox.app import create_sandbox_app, serve
from guidebot.sandbox.sandbox import Sandbox
from guidebot.sandbox.webio import SANDBOX_KEY

__all__ = ["SANDBOX_KEY", "Sandbox", "create_sandbox_app", "serve"]
