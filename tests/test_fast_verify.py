"""The no-finding fast path of verification (trigger windows, glued Latin terms) agrees with the full
verification (``explain`` always takes the full path) on random and planted text."""

from __future__ import annotations

import random

import pytest

from livestream_compliance import Checker, Source

ALPHABET = "1234567890bcdefghiJKLMNOPQRSTUVWXYZqwvx "
PLANTS = ["13812345678", "一三八一二三四五六七八", "vx", "wx", "qq", "tb", "jd", "sb", "2b", "加我vx abc12345", "qq 123456789",
          "电话 010-12345678", "原价 199", "这个价格别的直播间拿不到", "全网最低价", "最好", "第一", "VX：abcdef1", "V信"]


def _random_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            if r < 0.4:
                parts.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30))))
            elif r < 0.7:
                parts.append("".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(1, 8))))
            else:
                parts.append(rng.choice(PLANTS))
        out.append("".join(parts))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_agrees_with_full_verification(checker: Checker, py_checker: Checker, seed: int) -> None:
    for text in _random_lines(400, seed):
        for source in Source:
            full = checker.explain(text, source).findings
            assert checker.check(text, source) == full, (text, source)
            assert py_checker.check(text, source) == full, (text, source)
