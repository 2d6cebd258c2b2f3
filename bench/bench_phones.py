"""Phone normalisation: PhoneNormalizer (prefix-bucket fast path) against plain phonenumbers
(parse + is_valid + format E.164) on the same mixed corpus, and 0 mismatches against the
reference ``normalize_phone`` on every number of the corpus."""

from __future__ import annotations

import time

import phonenumbers

from . import datagen
from .common import Context, ab, result


def run(ctx: Context) -> dict[str, dict]:
    from addressbook.phones import PhoneNormalizer, normalize_phone

    corpus = datagen.phone_corpus(ctx.size)

    def plain() -> float:
        start = time.perf_counter()
        fmt, parse, valid, e164 = phonenumbers.format_number, phonenumbers.parse, phonenumbers.is_valid_number, 0
        for raw in corpus:
            try:
                number = parse(raw, "FR")
            except phonenumbers.NumberParseException:
                continue
            if valid(number):
                fmt(number, e164)
        return time.perf_counter() - start

    def fast() -> float:
        normalizer = PhoneNormalizer(default_region="FR")  # cold cache every run
        start = time.perf_counter()
        for raw in corpus:
            normalizer.normalize(raw)
        return time.perf_counter() - start

    ratio_time, spread, a_times, b_times = ab(plain, fast, pairs=ctx.pairs)
    normalizer = PhoneNormalizer(default_region="FR")
    mismatches = []
    for raw in corpus:
        got = normalizer.normalize(raw)
        ref = normalize_phone(raw, default_region="FR")
        if (got.e164, got.region, got.error) != (ref.e164, ref.region, ref.error):
            mismatches.append(raw)
    a_med, b_med = sorted(a_times)[len(a_times) // 2], sorted(b_times)[len(b_times) // 2]
    out = {
        "phones_vs_phonenumbers": result(
            value=len(corpus) / b_med,
            unit="numbers/s",
            baseline=len(corpus) / a_med,
            ratio=1 / ratio_time,
            target=4.0,
            spread=[round(1 / spread[1], 2), round(1 / spread[0], 2)],
        ),
        "phones_mismatches": result(
            value=len(mismatches),
            unit="numbers",
            baseline=None,
            ratio=len(mismatches),
            target=0,
            lower_is_better=True,
            examples=mismatches[:5],
            corpus=len(corpus),
        ),
    }
    return out
