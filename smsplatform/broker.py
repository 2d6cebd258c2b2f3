"""Kombu's filesystem transport with atomic writes: the zero-setup broker.

The stock transport writes each message file in place, so a worker polling the folder can read a
half-written file and drop the message (kombu issue 1551; see ../shared/FACTS.md). Writing to a
temporary name in the same folder and ``os.replace``-ing it makes a message appear whole or not at
all. Registered as the ``filesystem://`` alias by ``smsplatform.celery``.
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # ".tmp" suffix: the reader only takes files ending in ".<queue>.msg".
        temporary = f"{final}.tmp"
        try:
            with open(temporary, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
