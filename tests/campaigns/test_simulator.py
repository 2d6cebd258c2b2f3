import pytest

from addressbook.models import BlacklistEntry
from billing.models import LedgerEntry
from campaigns import tasks
from campaigns.gateways import OutgoingSMS, get_gateway
from campaigns.gateways.simulator import carrier_id_for
from campaigns.models import Inbound, Message

from .pipeline_support import fr, fund, make_campaign, make_rates

pytestmark = pytest.mark.django_db
S = Message.Status


@pytest.fixture
def simulator(settings):
    settings.SMS_GATEWAYS = {"default": {"BACKEND": "campaigns.gateways.simulator.Gateway", "OPTIONS": {"DELAY": 0}}}


def test_outcomes_are_deterministic_by_last_digit(user, simulator, django_capture_on_commit_callbacks):
    make_rates()
    fund(user, "100")
    numbers = {digit: fr(100 + digit, last=digit) for digit in range(10)}
    campaign = make_campaign(user, numbers=numbers.values(), text="Promo")
    with django_capture_on_commit_callbacks(execute=True):
        tasks.dispatch_due_campaigns()  # eager: the simulator's later events run at once
    got = dict(Message.objects.filter(campaign=campaign).values_list("phone", "status"))
    assert got[numbers[0]] == S.REJECTED
    assert got[numbers[9]] == S.HANDSET_PERMANENT
    assert all(got[numbers[d]] == S.RECEIVED for d in range(1, 9))
    replies = dict(Inbound.objects.values_list("sender", "text"))
    assert replies == {numbers[8]: "STOP", numbers[7]: "Merci !"}
    assert BlacklistEntry.objects.filter(account=user, number=numbers[8], source="stop").exists()
    assert LedgerEntry.objects.get(kind="refund").amount == 1


def test_same_ref_same_carrier_id_and_voice_supported(simulator):
    gateway = get_gateway()
    assert gateway.supports_voice
    message = OutgoingSMS(ref="42", to=fr(1), text="Hi", kind="voice")
    first = gateway.send_messages([message])[0]
    assert first.accepted and first.carrier_id == carrier_id_for("default", "42")
    assert gateway.send_messages([message])[0].carrier_id == first.carrier_id


def test_the_simulator_is_the_default_gateway():
    # conftest swaps in locmem for each test; the project's default is the module's value.
    from smsplatform import settings as project_settings

    assert project_settings.SMS_GATEWAYS["default"]["BACKEND"] == "campaigns.gateways.simulator.Gateway"
