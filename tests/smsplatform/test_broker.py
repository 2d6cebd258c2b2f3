"""The zero-setup broker: kombu's filesystem transport with atomic writes (FACTS.md, Celery)."""

import os

from kombu import Connection

from smsplatform.broker import Transport


def _connection(folder):
    return Connection(
        transport=Transport,
        transport_options={
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder / "control"),
        },
    )


def test_filesystem_alias_is_the_atomic_transport():
    from kombu.transport import resolve_transport

    import smsplatform.celery  # noqa: F401 - registers the alias

    assert resolve_transport("filesystem") is Transport


def test_messages_round_trip_and_no_partial_file_is_visible(tmp_path):
    (tmp_path / "control").mkdir()
    payload = "x" * 200_000
    with _connection(tmp_path) as conn:
        queue = conn.SimpleQueue("q")
        for i in range(50):
            queue.put({"i": i, "blob": payload})
        # Only complete files carry the reader's suffix; temporaries end in ".tmp" and are gone.
        names = os.listdir(tmp_path)
        assert not [n for n in names if n.endswith(".tmp")]
        received = []
        for _ in range(50):
            message = queue.get(timeout=2)
            received.append(message.payload["i"])
            assert message.payload["blob"] == payload
            message.ack()
        queue.close()
    assert sorted(received) == list(range(50))
