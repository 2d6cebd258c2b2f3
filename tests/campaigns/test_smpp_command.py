"""``manage.py smpp_connector``: the process the Procfile and docker-compose run (GW-1)."""

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from django.core.management import CommandError, call_command

from campaigns.gateways.smpp import State, gateway_status
from campaigns.gateways.smpp.status import PREFIX

from .smpp_simulator import Simulator, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_refuses_an_alias_that_is_not_smpp(settings):
    with pytest.raises(CommandError, match="not campaigns.gateways.smpp.Gateway"):
        call_command("smpp_connector", alias="default")
    with pytest.raises(CommandError, match="No SMS gateway 'nope'"):
        call_command("smpp_connector", alias="nope")


def test_binds_and_unbinds_cleanly_on_sigterm(settings, redis_url, tmp_path):
    simulator = Simulator(log=tmp_path / "simulator.log").start()
    alias = f"smpp-{uuid.uuid4().hex[:8]}"
    options = simulator.options(REDIS_URL=redis_url)
    settings.SMS_GATEWAYS = {alias: {"BACKEND": "campaigns.gateways.smpp.Gateway", "OPTIONS": options}}
    env = {
        **os.environ,
        "DEBUG": "1",
        "VAR_DIR": str(tmp_path),
        "SMS_GATEWAYS": json.dumps(settings.SMS_GATEWAYS),
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "smpp_connector", "--alias", alias],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(lambda: gateway_status(alias).state == State.BOUND, timeout=20)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert gateway_status(alias).state == State.STOPPED
        assert simulator.stats()["unbinds"] == 1
    finally:
        if process.poll() is None:
            process.kill()
        simulator.stop()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{PREFIX}:{alias}:*"))
        if keys:
            client.delete(*keys)
