from django.db import models


class Heartbeat(models.Model):
    """The last time a periodic task ran, by name.

    Beat schedules ``smsplatform.tasks.heartbeat`` and a worker runs it, so a fresh row proves
    both are alive; /healthz and the admin index read it.
    """

    name = models.CharField(max_length=64, primary_key=True)
    at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} @ {self.at:%Y-%m-%d %H:%M:%S}"
