"""`guidebot demo` runs the whole story on a fresh SQLite database and says what happened."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import time
from pathlib import Path

import pytest

from guidebot.cli import main
from tests.support.procs import Server, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_demo_story(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--no-serve", "--config", str(ROOT / "config.toml"), "--workdir",
                 str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Seeded 2 stores and 4 guides." in out
    assert out.count("exclusive guide: ") == 6
    assert "欢迎来到双11专场" in out and "静安嘉里中心店的导购李娜" in out
    assert "send_welcome_msg ×7" in out and "mark_tag ×8" in out  # 7 channel tags, 1 auto
    assert "is told at once (互动雷达, an app message): 客户「张晓雨」正在看您发的「" in out
    assert "and 张晓雨 is tagged 美妆兴趣 on lina's relation (自动打标签" in out
    # the month's usage, as metered: 7 welcomes, the SOP chapter's tasks, the kf chapter's
    # replies, the app messages to guides (SOP, handoff, commands, materials)
    usage = re.search(r"Usage \d{4}-\d\d \(what a SaaS operator bills\): (.*)", out)
    assert usage is not None, out
    assert usage.group(1) == (
        "4 active guides, 6 customers added; messages: welcome 7, 群发 task 7, moment 0, "
        "客服 reply 2, app message 18; LLM tokens 0 (this demo runs without a model); "
        "attributed orders 2, GMV ¥2,097.00")
    # the chat chapter, without an LLM: price and card at night, handoff, guide commands
    chat = out[out.index("Chat (微信客服"):]
    assert ("张晓雨 writes: 丝绒哑光口红多少钱？\n"
            "    guidebot replies: 丝绒哑光口红 #01 正红 的价格是 ¥299。") in chat
    assert "miniprogram card: 丝绒哑光口红 #01 正红 → pages/goods/detail.html?id=1001 " \
           "(tracked for lina)" in chat
    assert "kf/service_state/trans → state 3, servicer lina\n    lina's app message: 张晓雨 " \
           in chat
    assert "lina writes to the guidebot app: 业绩\n    " in chat and "佣金 ¥41.89（1 单" in chat
    suggestions = chat[chat.index("建议 口红多少钱"):]
    assert "1. 丝绒哑光口红 #01 正红 的价格是 ¥299" in suggestions and "2. 支持。" in suggestions
    assert "the session is now with lina (state 3)" in chat
    assert (tmp_path / "demo.db").exists()


def test_demo_prints_the_same_story_on_every_run(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ports = ["--port", str(free_port()), "--sandbox-port", str(free_port())]
    outputs = []
    for _ in range(2):
        code = main(["demo", "--no-serve", "--config", str(ROOT / "config.toml"),
                     "--workdir", str(tmp_path), *ports])
        out = capsys.readouterr().out
        assert code == 0, out
        # The one masked value: a tracked card's token is a random bearer credential by
        # design (anyone holding it can record visits for that card), never made predictable.
        outputs.append(re.sub(r"&t=[A-Za-z0-9_-]+'", "&t=<token>'", out))
    assert "&t=<token>'" in outputs[0]
    assert outputs[0] == outputs[1]
    assert "wmDemoCustomer01" in outputs[0]
    # the demo ends, printing the command that serves it
    assert (f"the console on this story's data: guidebot --config {ROOT / 'config.toml'} demo "
            f"--workdir {tmp_path} --serve {' '.join(ports)}\n") in outputs[0]
    assert "Serving until Ctrl-C" not in outputs[0]


def test_demo_serve_keeps_running_and_its_commands_work_as_printed(tmp_path: Path) -> None:
    demo = Server.start(["demo", "--serve", "--config", str(ROOT / "config.toml"), "--workdir",
                         str(tmp_path / "demo")], tmp_path, name="demo")
    try:
        out = demo.wait_output("  metrics:")
        serving = out[out.index("Serving until Ctrl-C:"):]
        commands = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
                    for line in serving.splitlines() if "curl " in line}
        assert set(commands) == {"admin API", "a new add", "what WeCom saw", "metrics"}

        def shell(command: str) -> str:
            done = subprocess.run(["bash", "-c", command + " --silent --fail"],
                                  capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, (command, done.stderr)
            return done.stdout

        console = re.search(r"console: +(\S+)/console/login +\(tenant (\w+), admin token "
                            r"(\S+)\)", serving)
        assert console is not None, serving
        bot, tenant, token = console.groups()
        overview = shell(f"curl -H 'Authorization: Bearer {token}' {bot}/console/{tenant}/")
        assert f'<a href="/console/{tenant}/sops">' in overview
        assert 'data-figure="adds">7<' in overview  # the story's adds
        operator = re.search(r"operator: +(\S+)/operator/login +\(operator token (\S+):",
                             serving)
        assert operator is not None, serving
        assert operator.group(1) == bot
        period = time.strftime("%Y-%m", time.gmtime())
        usage = shell(f"curl -H 'Authorization: Bearer {operator.group(2)}' "
                      f"'{bot}/operator/usage?period={period}'")
        assert ">demo<" in usage, usage  # the demo tenant's row in the usage table
        # the cards guides get (SOP tasks, a handoff) open this guidebot (not the config's
        # public_url)
        sandbox_url = re.search(r"sandbox: +(\S+)/cgi-bin/", serving).group(1)
        calls = json.loads(shell(f"curl {sandbox_url}/_sandbox/calls"))["calls"]
        cards = [c["body"]["textcard"]["url"] for c in calls if c["path"] == "message/send"
                 and c["body"].get("msgtype") == "textcard"]
        assert cards and all(u.startswith(f"{bot}/") for u in cards), cards
        tasks = [u for u in cards if u.startswith(f"{bot}/g/{tenant}/tasks/")]
        assert tasks and "<html" in shell(f"curl '{tasks[0]}'")
        assert any(u.startswith(f"{bot}/sidebar/{tenant}/handoff/") for u in cards), cards
        guides = json.loads(shell(commands["admin API"]))
        assert len(guides["guides"]) == 4
        added = json.loads(shell(commands["a new add"]))
        assert added["delivery"]["status"] == 200
        # The running guidebot processes the add after its 200: wait for its welcome.
        for _ in range(600):
            state = json.loads(shell(commands["what WeCom saw"]))
            if any(w["external_userid"] == added["external_userid"]
                   for w in state["welcome_messages"]):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no welcome for the new add: {state['welcome_messages']}")
        assert 'guidebot_callbacks_total{result="accepted",tenant="demo"}' in shell(
            commands["metrics"])
    finally:
        status = demo.stop()
    assert status == 130, demo.output()


def test_demo_serves_by_default_only_when_stdin_is_a_terminal(tmp_path: Path) -> None:
    args = ["demo", "--config", str(ROOT / "config.toml"), "--workdir", str(tmp_path / "demo")]
    ended = Server.start(args, tmp_path, name="piped")  # stdin: /dev/null
    assert ended.proc.wait(timeout=300) == 0, ended.output()
    assert "the console on this story's data: guidebot --config" in ended.output()
    assert "Serving until Ctrl-C" not in ended.output()
    terminal, its_end = pty.openpty()
    served = Server.start(args, tmp_path, name="terminal", stdin=its_end)
    os.close(its_end)
    try:
        out = served.wait_output("  metrics:")
        assert "Serving until Ctrl-C:" in out and "/console/login" in out
    finally:
        status = served.stop()
        os.close(terminal)
    assert status == 130, served.output()


def test_demo_material_chapter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A guide contributes a photo with copy, HQ approves it as A, another guide sends it to
    a customer, the contributor earns points and the customer's order shows up under it."""
    code = main(["demo", "--config", str(ROOT / "config.toml"), "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    chapter = out[out.index("Materials: "):out.index("Data centre: ")]
    assert "keeps it and files one submission g-" in chapter and "1 picture" in chapter
    assert "approves it as A" in chapter and "评级 A" in chapter
    assert "lina earns 5 points" in chapter and "0 more points" in chapter
    assert "1 order, GMV ¥899.00" in chapter
    assert "#1 lina 5 (1 counted uses)" in chapter
    assert len(list((tmp_path / "data" / "materials").rglob("*.png"))) == 1


def test_a_port_in_use_is_one_line_not_a_traceback(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        code = main(["demo", "--no-serve", "--config", str(ROOT / "config.toml"), "--workdir",
                     str(tmp_path), "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"error: a port is already in use (127.0.0.1:{port}: Address already in "
                   "use): stop what holds it, or pass another --port (demo: --port and "
                   "--sandbox-port)\n")
