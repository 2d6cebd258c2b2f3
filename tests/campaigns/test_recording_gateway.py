"""The kill test's fake carrier must itself survive a SIGKILL at any instant: whichever Redis
command the worker dies after, submitting the ref again delivers it exactly once."""

import time

import pytest
import redis

from campaigns.gateways import OutgoingSMS

from .recording_gateway import Gateway


class Killed(BaseException):
    """Stands for the SIGKILL: nothing after it runs in that worker."""


@pytest.mark.parametrize("dies_after", range(1, 6))
def test_a_ref_resubmitted_after_a_kill_at_any_command_is_delivered_once(redis_url, dies_after):
    key = f"recording-test:{dies_after}:{time.time_ns()}"
    message = OutgoingSMS(ref="42", to="+33612345678", text="hi")
    dying = Gateway(REDIS_URL=redis_url, KEY=key)
    dying.open()
    real_execute = dying.redis.execute_command
    commands = 0

    def execute_then_die(*args, **kwargs):
        nonlocal commands
        result = real_execute(*args, **kwargs)
        commands += 1
        if commands >= dies_after:
            raise Killed
        return result

    dying.redis.execute_command = execute_then_die
    try:
        dying.send_messages([message])
    except Killed:
        pass  # died after command `dies_after`; with fewer commands the send simply completed

    with Gateway(REDIS_URL=redis_url, KEY=key) as healthy:
        (first,) = healthy.send_messages([message])
        (again,) = healthy.send_messages([message])
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.hget(f"{key}:delivered", "42") == b"1"
        assert first.carrier_id == again.carrier_id
    finally:
        client.delete(*[f"{key}:{suffix}" for suffix in ("calls", "carrier", "delivered", "seen")])
