"""Run the node SMPP carrier simulator (tools/smpp-simulator) as a subprocess on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

SIMULATOR_DIR = Path(__file__).resolve().parents[2] / "tools" / "smpp-simulator"
SMPP_PORTS = range(2780, 2790)
CONTROL_PORTS = range(8160, 8170)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _free_port(ports: range) -> int:
    for port in ports:
        if not _listening(port):
            return port
    raise RuntimeError(f"No free port in {ports}")


def ensure_installed() -> None:
    if not (SIMULATOR_DIR / "node_modules" / "smpp").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SIMULATOR_DIR, check=True, capture_output=True)


class Simulator:
    """``Simulator(*args).start()``; args are server.js flags (``--throttle-per-second 100``...)."""

    def __init__(self, *args: str, system_id: str = "test", password: str = "secret", log: Path | None = None):
        self.args = list(args)
        self.system_id = system_id
        self.password = password
        self.port = self.control_port = 0
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> Simulator:
        ensure_installed()
        self.port, self.control_port = _free_port(SMPP_PORTS), _free_port(CONTROL_PORTS)
        command = ["node", str(SIMULATOR_DIR / "server.js"), "--port", str(self.port)]
        command += ["--control-port", str(self.control_port), "--system-id", self.system_id]
        command += ["--password", self.password, "--quiet", *self.args]
        out = open(self.log, "wb") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not (_listening(self.port) and _listening(self.control_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The SMPP simulator did not start: {' '.join(command)}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read() or b"{}")

    def stats(self, *, messages: bool = False) -> dict:
        return self._call("GET", "/stats?messages=1" if messages else "/stats")

    def send_mo(self, sender: str, recipient: str, text: str, data_coding: int = 0) -> None:
        self._call("POST", "/mo", {"from": sender, "to": recipient, "text": text, "data_coding": data_coding})

    def drop(self) -> None:
        self._call("POST", "/drop", {})

    def configure(self, **config) -> dict:
        return self._call("POST", "/config", config)

    def options(self, **extra) -> dict:
        """Gateway OPTIONS pointing at this simulator."""
        base = {"HOST": "127.0.0.1", "PORT": self.port, "SYSTEM_ID": self.system_id, "PASSWORD": self.password}
        return {**base, "SYSTEM_TYPE": "", "WINDOW": 20, "SOURCE_ADDR": "+33700000000", **extra}


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
