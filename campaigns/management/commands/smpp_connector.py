"""``manage.py smpp_connector [--alias default]``: hold the SMPP bind of one gateway alias."""

import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from campaigns.gateways.smpp.connector import Connector


class Command(BaseCommand):
    help = "Run the long-lived SMPP bind of a gateway alias (submits, receipts, replies). Stop with SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--alias", default="default", help="Alias in settings.SMS_GATEWAYS (default: default).")

    def handle(self, *args, alias, **options):
        config = settings.SMS_GATEWAYS.get(alias)
        if config is None:
            raise CommandError(f"No SMS gateway {alias!r} in settings.SMS_GATEWAYS.")
        if config["BACKEND"] != "campaigns.gateways.smpp.Gateway":
            raise CommandError(f"Gateway {alias!r} uses {config['BACKEND']}, not campaigns.gateways.smpp.Gateway.")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        connector = Connector(alias)
        # Unbind cleanly on docker stop / Ctrl-C: the carrier then drops nothing it took.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: connector.stop())
        connector.run()
