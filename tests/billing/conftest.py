import importlib

import pytest
from django.apps import apps


@pytest.fixture
def catalogue(db):
    """The default rate card and packs of the data migration (transactional tests flush them)."""
    from billing.models import Pack, Rate

    if not Rate.objects.exists() or not Pack.objects.exists():
        migration = importlib.import_module("billing.migrations.0003_default_rate_card_and_packs")
        migration.forwards(apps, None)
