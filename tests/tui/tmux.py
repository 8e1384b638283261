"""Driving the real ``orienteer`` command inside tmux, as a person at a terminal would."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path


class TmuxSession:
    def __init__(self, command: list[str], width: int = 100, height: int = 30, env: dict[str, str] | None = None) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed (.ci/run installs it; apt-get install tmux)")
        self.name = f"orienteer-test-{uuid.uuid4().hex[:8]}"
        self.socket = f"orienteer-{uuid.uuid4().hex[:8]}"
        env_args = [arg for k, v in (env or {}).items() for arg in ("-e", f"{k}={v}")]
        subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", self.name, "-x", str(width), "-y",
                        str(height), *env_args, " ".join(_quote(c) for c in command)], check=True)

    def capture(self) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-t", self.name],
                             capture_output=True, text=True)
        return out.stdout

    def send(self, *keys: str) -> None:
        """Send keys; an Escape is followed by a pause, or the terminal reads escape+key as alt+key."""
        for key in keys:
            subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", self.name, key], check=True)
            if key == "Escape":
                time.sleep(0.3)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if text in screen:
                return screen
            time.sleep(0.05)
        raise AssertionError(f"{text!r} did not appear within {timeout} s; screen was:\n{screen}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session", "-t", self.name],
                              capture_output=True).returncode == 0

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def orienteer_exe() -> Path:
    import sys

    exe = Path(sys.executable).parent / "orienteer"
    if not exe.exists():
        raise RuntimeError(f"{exe} missing: install the project (pip install -e .)")
    return exe
