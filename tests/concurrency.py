"""Races that only a real database with concurrent transactions can show: calls started at the
same moment in threads, each thread on its own database connection."""

import threading

from django.db import connections


def race(*calls, timeout: float = 60) -> list:
    """Run the calls at the same moment; return, per call, what it returned or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            outcomes[index] = call()
        except BaseException as error:  # noqa: BLE001 - the outcome under test
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return outcomes


def race_errors(*calls, timeout: float = 60) -> list[BaseException]:
    """Run the calls at the same moment; return the exceptions they raised."""
    return [outcome for outcome in race(*calls, timeout=timeout) if isinstance(outcome, BaseException)]
