"""The prebuilt start-up state: written by the install (setup.py runs ``prebuild``), read by
``load_checker`` only under its exact key, never written to at run time."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from livestream_compliance import loader, prebuild
from livestream_compliance.engine import Checker
from livestream_compliance.findings import Source

FIXTURE = Path(__file__).parent / "fixtures" / "rules" / "engine"

TEXTS = ["这是全网最低价，赶紧下单", "加我薇信 abc123456 私聊", "打电话 13812345678 订购", "不是最好的", "这里没有违规的内容"]


def _findings(ck: Checker) -> list[list[tuple[str, int, int]]]:
    return [[(f.rule_id, f.start, f.end) for f in ck.check(t, s)] for t in TEXTS for s in Source]


def _no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "build_rule_set", lambda *a, **k: pytest.fail("rules parsed despite a prebuilt state"))
    monkeypatch.setattr(Checker, "_compile", lambda self: pytest.fail("state built despite a prebuilt state"))


@pytest.fixture()
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    shutil.copytree(FIXTURE, d)
    return d


def test_a_prebuilt_state_is_read_and_never_written(rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _findings(loader.load_checker([rules_dir], defaults=False, cache_dir=None, prebuilt=None))
    pre = tmp_path / "prebuilt"
    path = prebuild.write_prebuilt(pre, [rules_dir], defaults=False)
    shipped = sorted([path.name, "patterns.memo"])
    assert path.parent == pre and sorted(p.name for p in pre.iterdir()) == shipped
    for f in pre.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644  # readable by every user of a system-wide install
    before = {f.name: f.read_bytes() for f in pre.iterdir()}
    _no_build(monkeypatch)
    cache = tmp_path / "cache"
    ck = loader.load_checker([rules_dir], defaults=False, cache_dir=cache, prebuilt=pre)
    assert _findings(ck) == reference
    assert not cache.exists()  # read from the prebuilt directory: nothing copied to the cache
    assert _findings(loader.load_checker([rules_dir], defaults=False, cache_dir=None, prebuilt=pre)) == reference
    assert {f.name: f.read_bytes() for f in pre.iterdir()} == before


def test_a_prebuilt_state_for_other_rules_is_not_used(rules_dir: Path, tmp_path: Path) -> None:
    pre = tmp_path / "prebuilt"
    prebuild.write_prebuilt(pre, [rules_dir], defaults=False)
    f = sorted(rules_dir.glob("*.toml"))[0]
    f.write_text(f.read_text(encoding="utf-8") + "\n# a comment is a change too\n", encoding="utf-8")
    ck = loader.load_checker([rules_dir], defaults=False, cache_dir=None, prebuilt=pre)
    assert ck.version == loader.load_checker([rules_dir], defaults=False, cache_dir=None, prebuilt=None).version
    assert len(list(pre.glob("*.state"))) == 1  # still only the old state: the new one went nowhere


def test_a_build_on_the_install_reuses_its_pattern_analyses(rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules other than the prebuilt ones (a custom pack, an edited one) analyse only new patterns,
    even with no cache at all: the install ships the analyses of its packs' patterns."""
    from livestream_compliance import literals

    pre = tmp_path / "prebuilt"
    prebuild.write_prebuilt(pre, [rules_dir], defaults=False)
    f = sorted(rules_dir.glob("*.toml"))[0]
    f.write_text(f.read_text(encoding="utf-8") + "\n# an edit that keeps every pattern\n", encoding="utf-8")
    monkeypatch.setattr(literals, "_PREPARED", {})  # as in a new process
    monkeypatch.setattr(literals, "_SEEDS", {})
    monkeypatch.setattr(literals, "_PENDING", [])
    reference = _findings(loader.load_checker([rules_dir], defaults=False, cache_dir=None, prebuilt=None))
    monkeypatch.setattr(literals, "_PREPARED", {})
    monkeypatch.setattr(literals, "_SEEDS", {})
    monkeypatch.setattr(literals, "_PENDING", [])
    monkeypatch.setattr(literals, "_analyse_tree", lambda *a: pytest.fail("a pattern analysed again"))
    for cache in (None, tmp_path / "cache"):
        monkeypatch.setattr(literals, "_PREPARED", {})
        monkeypatch.setattr(literals, "_SEEDS", {})
        monkeypatch.setattr(literals, "_PENDING", [])
        ck = loader.load_checker([rules_dir], defaults=False, cache_dir=cache, prebuilt=pre, save="now")
        assert _findings(ck) == reference


def test_a_corrupt_prebuilt_state_is_rebuilt(rules_dir: Path, tmp_path: Path) -> None:
    pre = tmp_path / "prebuilt"
    path = prebuild.write_prebuilt(pre, [rules_dir], defaults=False)
    reference = _findings(loader.load_checker([rules_dir], defaults=False, cache_dir=None, prebuilt=pre))
    path.write_bytes(path.read_bytes()[:1000])
    assert _findings(loader.load_checker([rules_dir], defaults=False, cache_dir=None, prebuilt=pre)) == reference


def test_prebuild_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert prebuild.main([]) == prebuild.EXIT_USAGE
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert prebuild.main([str(blocker / "prebuilt")]) == prebuild.EXIT_ERROR  # a directory under a file
    assert "no prebuilt state" in capsys.readouterr().err


def test_the_install_prebuilt_the_default_packs(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pip install` (setup.py) wrote the default packs' state into the package; a fresh start with
    no cache reads it instead of building."""
    states = list(loader.PREBUILT_DIR.glob("*.state"))
    assert states, (f"no prebuilt state in {loader.PREBUILT_DIR}: the install's prebuild step failed "
                    "(see the pip log: 'prebuild:')")
    if not loader.state_path(cache_dir=loader.PREBUILT_DIR).is_file():
        pytest.skip("the package or the rules changed since it was installed: run `pip install -e .` again")
    _no_build(monkeypatch)
    ck = loader.load_checker(cache_dir=None)
    assert [f.rule_id for f in ck.check("加我薇信领福利", Source.CHAT)] == ["DIV-WECHAT-ALIAS"]
