"""Default rate card (every region libphonenumber knows, Pro SMS and Voice SMS) and credit packs.

Plausible list prices, editable in the admin: France 1 credit per part, the UK 1.1, Voice to
France 1.41 (SPEC BIL-2), the rest of Europe 1.2-1.5, French overseas departments 1.3, North
America 1.5, elsewhere 1.8-3. Voice SMS costs about 1.41 times the Pro SMS rate.
"""

from decimal import Decimal

from django.db import migrations

VOICE_FACTOR = Decimal("1.41")
EXPLICIT = {
    "FR": "1",
    "GB": "1.1",
    "MC": "1.1",
    "BE": "1.2",
    "LU": "1.2",
    "CH": "1.3",
    "DE": "1.3",
    "ES": "1.2",
    "IT": "1.3",
    "PT": "1.2",
    "NL": "1.4",
    "IE": "1.3",
    "AT": "1.4",
    "US": "1.5",
    "CA": "1.5",
}
EUROPE = {
    "AD",
    "AL",
    "AT",
    "AX",
    "BA",
    "BG",
    "BY",
    "CY",
    "CZ",
    "DK",
    "EE",
    "FI",
    "FO",
    "GG",
    "GI",
    "GR",
    "HR",
    "HU",
    "IM",
    "IS",
    "JE",
    "LI",
    "LT",
    "LV",
    "MD",
    "ME",
    "MK",
    "MT",
    "NO",
    "PL",
    "RO",
    "RS",
    "SE",
    "SI",
    "SJ",
    "SK",
    "SM",
    "UA",
    "VA",
    "XK",
}
FRENCH_OVERSEAS = {"MQ", "GP", "RE", "GF", "YT", "PM", "BL", "MF"}
FRENCH_PACIFIC = {"NC", "PF", "WF"}
MAGHREB_AND_NEAR = {"MA", "DZ", "TN", "TR", "IL", "SN", "CI"}
EXPENSIVE = {"AQ", "SH", "TA", "AC", "NF", "NR", "TK", "NU", "KI", "TV", "CK", "FK", "IO", "PN"}
# Regions whose example number libphonenumber's geocoder cannot name.
NAMES = {
    "AC": "Ascension Island",
    "BL": "Saint Barthélemy",
    "EH": "Western Sahara",
    "MF": "Saint Martin",
    "TA": "Tristan da Cunha",
    "XK": "Kosovo",
}
PACKS = [(50, "4.50"), (100, "8.50"), (1000, "75.00"), (10000, "650.00"), (50000, "2900.00")]


def sms_rate(region: str) -> Decimal:
    if region in EXPLICIT:
        return Decimal(EXPLICIT[region])
    if region in FRENCH_OVERSEAS:
        return Decimal("1.3")
    if region in EUROPE:
        return Decimal("1.5")
    if region in FRENCH_PACIFIC or region in MAGHREB_AND_NEAR:
        return Decimal("1.8")
    if region in EXPENSIVE:
        return Decimal("3")
    return Decimal("2.2")


def country_name(phonenumbers, geocoder, region: str) -> str:
    example = phonenumbers.example_number(region)
    name = geocoder.country_name_for_number(example, "en") if example is not None else ""
    return name or NAMES.get(region, region)


def forwards(apps, schema_editor):
    import phonenumbers
    from phonenumbers import geocoder

    Rate = apps.get_model("billing", "Rate")
    Pack = apps.get_model("billing", "Pack")
    rates = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        name = country_name(phonenumbers, geocoder, region)
        code = phonenumbers.country_code_for_region(region)
        sms = sms_rate(region)
        voice = (sms * VOICE_FACTOR).quantize(Decimal("0.01"))
        for kind, credits in (("sms", sms), ("voice", voice)):
            rates.append(Rate(kind=kind, region=region, country_name=name, calling_code=code, credits_per_part=credits))
    Rate.objects.bulk_create(rates, ignore_conflicts=True)
    if not Pack.objects.exists():
        Pack.objects.bulk_create(
            Pack(credits=credits, price_eur=Decimal(price), position=i) for i, (credits, price) in enumerate(PACKS)
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_orders_invoices_transfers")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
