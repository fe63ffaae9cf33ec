"""The loader's checker-state cache: same findings warm or cold, invalidated by any rule change,
safe against corrupt files, and the engine's compiled state round-trips."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from livestream_compliance import loader
from livestream_compliance.engine import Checker, CompiledRules
from livestream_compliance.findings import Source

FIXTURE = Path(__file__).parent / "fixtures" / "rules" / "engine"

TEXTS = [
    "这是全网最低价，赶紧下单",
    "加我薇信 abc123456 私聊",
    "打电话 13812345678 订购",
    "最好的东西",
    "不是最好的",
    "家人们这个真的是国家级的好东西",
    "qq 12345678 联系我",
    "这里没有违规的内容",
]


def _findings(ck: Checker) -> list[list[tuple[str, int, int, str]]]:
    out = []
    for text in TEXTS:
        for source in Source:
            out.append([(f.rule_id, f.start, f.end, f.text) for f in ck.check(text, source)])
            out.append([(f.rule_id, f.start, f.end, f.text) for f in ck.check_batch([text, text], source)[1]])
    return out


@pytest.fixture()
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    shutil.copytree(FIXTURE, d)
    return d


def _load(rules_dir: Path, cache: Path | None, backend: str = "ahocorasick-rs") -> Checker:
    return loader.load_checker([rules_dir], defaults=False, cache_dir=cache, backend=backend, save="now")


def test_warm_cache_gives_the_same_checker_without_parsing(rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    reference = _load(rules_dir, None)
    cold = _load(rules_dir, cache)
    assert len(list(cache.glob("*.state"))) == 1
    # a warm start neither parses nor validates the rule files nor builds the state again
    monkeypatch.setattr(loader, "build_rule_set", lambda *a, **k: pytest.fail("rules parsed on a warm start"))
    monkeypatch.setattr(Checker, "_compile", lambda self: pytest.fail("state rebuilt on a warm start"))
    warm = _load(rules_dir, cache)
    warm_py = _load(rules_dir, cache, backend="pyahocorasick")
    assert warm.version == reference.version and warm_py.backend == "pyahocorasick"
    assert _findings(warm) == _findings(reference) == _findings(cold) == _findings(warm_py)
    assert [e.tokens for e in (warm.explain(t) for t in TEXTS)] == [e.tokens for e in (reference.explain(t) for t in TEXTS)]


def test_any_rule_change_misses(rules_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _load(rules_dir, cache)
    f = sorted(rules_dir.glob("*.toml"))[0]
    f.write_text(f.read_text(encoding="utf-8") + "\n# a comment is a change too\n", encoding="utf-8")
    second = _load(rules_dir, cache)
    assert len(list(cache.glob("*.state"))) == 2
    assert second.version != first.version


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_state_is_rebuilt(rules_dir: Path, tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    reference = _findings(_load(rules_dir, cache))
    (state,) = cache.glob("*.state")
    blob = state.read_bytes()
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "flip":
        blob = blob[:-100] + bytes([blob[-100] ^ 0xFF]) + blob[-99:]
    elif damage == "garbage":
        blob = b"not a state file at all"
    else:
        blob = b""
    state.write_bytes(blob)
    assert _findings(_load(rules_dir, cache)) == reference
    # ... and the rebuilt state was written back
    assert _findings(_load(rules_dir, cache)) == reference and loader._read_state(str(cache), loader._state_key(
        loader._layers([rules_dir], False), False)) is not None


def test_unwritable_cache_still_loads(rules_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ck = _load(rules_dir, blocker / "cache")  # cannot create a directory under a file
    assert _findings(ck) == _findings(_load(rules_dir, None))


def test_no_cache_writes_nothing(rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _load(rules_dir, None)
    assert not (tmp_path / "xdg").exists()
    loader.load_checker([rules_dir], defaults=False, save="now")  # the default: $XDG_CACHE_HOME/livestream-compliance
    assert len(list((tmp_path / "xdg" / "livestream-compliance").glob("*.state"))) == 1


def test_compiled_state_round_trips_and_is_checked(rules_dir: Path) -> None:
    ck = _load(rules_dir, None)
    compiled = ck.compiled()
    assert isinstance(compiled, CompiledRules) and compiled.fits(ck.rules)
    again = Checker(ck.rules, normalizer=ck.normalizer, segmenter=ck.segmenter, compiled=compiled)
    assert _findings(again) == _findings(ck)
    other = loader.build_rule_set([[("x.toml", (FIXTURE / sorted(p.name for p in FIXTURE.glob("*.toml"))[0]).read_text(encoding="utf-8"))]])
    assert not compiled.fits(other)  # another rule set: the state is ignored and rebuilt
    assert _findings(Checker(ck.rules, normalizer=ck.normalizer, segmenter=ck.segmenter,
                             compiled=CompiledRules("nope", {}, {}, {}, frozenset()))) == _findings(ck)


@pytest.mark.parametrize(
    "pattern",
    [r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])", r"(?:微信|vx)(?P<hit>[a-z][a-z0-9]{5,19})", r"最[好佳]|第一", r"(?i)abc\d+"],
)
def test_regex_recipe_round_trip(pattern: str) -> None:
    rx = re.compile(pattern)
    again = loader._regex_from_recipe(*loader._regex_recipe(rx))
    assert again.pattern == rx.pattern and again.flags == rx.flags and again.groupindex == rx.groupindex
    for text in ["13812345678", "微信abc12345", "最好第一", "ABC123", "x"]:
        assert [m.span() for m in again.finditer(text)] == [m.span() for m in rx.finditer(text)]
    # a recipe the interpreter rejects falls back to compiling the pattern
    bad = loader._regex_from_recipe(pattern, rx.flags, [0, 1, 2], rx.groups, dict(rx.groupindex), (None,))
    assert bad.pattern == pattern


def test_jieba_dictionary_parsed_like_jieba_and_cached_in_the_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import marshal
    import os

    from livestream_compliance.verify import import_jieba

    jieba = import_jieba()
    with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), "rb") as f:
        expected = jieba.Tokenizer().gen_pfdict(f)
    assert loader._parse_jieba_dict() == expected
    empty_tmp, cache = tmp_path / "tmp", tmp_path / "cache"
    empty_tmp.mkdir()
    monkeypatch.setattr(loader.tempfile, "gettempdir", lambda: str(empty_tmp))
    if loader._native is not None:
        # another jieba version: its own reading decides (via the cache file or the Python parse)
        with monkeypatch.context() as m:
            m.setattr(jieba, "__version__", "0.43")
            assert loader._native_jieba_dict() is None
        # with the C extension: parsed from dict.txt every time, no cache file read or written
        assert loader._native_jieba_dict() == expected
        assert loader._jieba_base_dictionary(str(cache)) == expected
        assert not cache.exists() and not list(empty_tmp.iterdir())
    # without it, a fresh container (nothing in TMPDIR nor in the cache dir): parsed, and written to the cache dir
    monkeypatch.setattr(loader, "_native_jieba_dict", lambda: None)
    assert loader._jieba_base_dictionary(str(cache)) == expected
    assert not list(empty_tmp.iterdir())
    with open(cache / "jieba.cache", "rb") as f:
        assert marshal.loads(f.read()) == expected  # jieba's own format
    # the next start reads it back (a damaged file is skipped, then rebuilt)
    assert loader._jieba_base_dictionary(str(cache)) == expected
    (cache / "jieba.cache").write_bytes(b"junk")
    assert loader._jieba_base_dictionary(str(cache)) == expected
    # an unwritable cache directory only costs the next start
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert loader._jieba_base_dictionary(str(blocker / "sub")) == expected


def test_warm_start_does_not_import_pydantic(rules_dir: Path, tmp_path: Path) -> None:
    """pydantic (rule-file validation) costs ~0.2 s of import; a start from the cache skips it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from livestream_compliance import loader\n"
        f"c = loader.load_checker([{str(rules_dir)!r}], defaults=False, cache_dir={str(tmp_path / 'cache')!r})\n"
        "assert c.check('这是全网最低价')\n"
        "print('pydantic' in sys.modules)\n"
    )
    run = [sys.executable, "-c", code]
    cold = subprocess.run(run, capture_output=True, text=True, check=True)
    warm = subprocess.run(run, capture_output=True, text=True, check=True)
    assert cold.stdout.strip() == "True"  # the first start validated the rule files
    assert warm.stdout.strip() == "False"


def test_load_checker_pauses_between_its_long_steps(tmp_path: Path) -> None:
    """``pause`` is called between the long steps, cold and warm, and changes nothing found."""
    calls: list[int] = []
    cold = loader.load_checker([FIXTURE], defaults=False, cache_dir=tmp_path, model=False, pause=lambda: calls.append(1), save="now")
    assert len(calls) >= 6  # after the rules, jieba's dictionary, its teaching, the compile, the folding, each automaton
    calls.clear()
    warm = loader.load_checker([FIXTURE], defaults=False, cache_dir=tmp_path, model=False, pause=lambda: calls.append(1))
    # after the state and the dictionary; the automata of the state's keys build meanwhile in threads of
    # their own, without the interpreter lock (see MatcherBuild), so there is nothing to pause for
    assert len(calls) >= 2
    assert _findings(warm) == _findings(cold) == _findings(loader.load_checker([FIXTURE], defaults=False, cache_dir=None, model=False))


# --------------------------------------------------------------------------- pattern analyses across builds
def _fresh_process_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a new process: literals.prepare remembers nothing."""
    from livestream_compliance import literals

    monkeypatch.setattr(literals, "_PREPARED", {})

    monkeypatch.setattr(literals, "_SEEDS", {})

    monkeypatch.setattr(literals, "_PENDING", [])


def test_a_rule_change_reuses_the_pattern_analyses(rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from livestream_compliance import literals

    cache = tmp_path / "cache"
    _fresh_process_memo(monkeypatch)
    _load(rules_dir, cache)
    assert (cache / "patterns.memo").is_file()
    f = sorted(rules_dir.glob("*.toml"))[0]
    f.write_text(f.read_text(encoding="utf-8") + "\n# a rule change that keeps every pattern\n", encoding="utf-8")
    _fresh_process_memo(monkeypatch)
    reference = _findings(_load(rules_dir, None))
    _fresh_process_memo(monkeypatch)
    monkeypatch.setattr(literals, "_analyse_tree", lambda *a: pytest.fail("a pattern analysed again"))
    changed = _load(rules_dir, cache)  # the state misses (new rules); every pattern comes from the memo
    assert _findings(changed) == reference
    assert len(list(cache.glob("*.state"))) == 2


@pytest.mark.parametrize("damage", ["garbage", "flip", "other code"])
def test_an_unusable_pattern_memo_is_ignored(rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    cache = tmp_path / "cache"
    _fresh_process_memo(monkeypatch)
    reference = _findings(_load(rules_dir, cache))
    memo = cache / "patterns.memo"
    blob = memo.read_bytes()
    if damage == "garbage":
        memo.write_bytes(b"not a memo")
    elif damage == "flip":
        memo.write_bytes(blob[:-50] + bytes([blob[-50] ^ 0xFF]) + blob[-49:])
    else:
        monkeypatch.setattr(loader, "_patterns_key", lambda: b"\0" * 32)
    for state in cache.glob("*.state"):
        state.unlink()
    _fresh_process_memo(monkeypatch)
    assert loader._patterns_in(str(cache)) == {}
    assert _findings(_load(rules_dir, cache)) == reference


@pytest.mark.parametrize("enabled", [True, False])
def test_load_checker_leaves_the_collector_as_it_found_it(rules_dir: Path, tmp_path: Path, enabled: bool) -> None:
    import gc

    seen: list[bool] = []
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        loader.load_checker([rules_dir], defaults=False, cache_dir=tmp_path / "c", pause=lambda: seen.append(gc.isenabled()), save="now")
        assert gc.isenabled() is enabled
        loader.load_checker([rules_dir], defaults=False, cache_dir=tmp_path / "c")  # warm
        assert gc.isenabled() is enabled
        (rules_dir / "broken.toml").write_text("this is = = not toml", encoding="utf-8")
        with pytest.raises(loader.RuleError):
            loader.load_checker([rules_dir], defaults=False, cache_dir=tmp_path / "c")
        assert gc.isenabled() is enabled  # restored when the build fails too
    finally:
        (gc.enable if was else gc.disable)()
    assert seen and not any(seen)  # off while it built


def _wait_for(predicate, seconds: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_by_default_a_child_process_writes_the_state(rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    written: list[str] = []
    original = loader._write_state

    def recording(directory: str, *a, **k) -> None:
        written.append(directory)  # in the process that writes: the parent's list stays empty if a child did
        original(directory, *a, **k)

    monkeypatch.setattr(loader, "_write_state", recording)
    reference = _findings(_load(rules_dir, None))
    first = loader.load_checker([rules_dir], defaults=False, cache_dir=cache, backend="ahocorasick-rs")
    assert _findings(first) == reference  # usable at once, whatever the child is doing
    _wait_for(lambda: len(list(cache.glob("*.state"))) == 1 and (cache / "patterns.memo").is_file())
    assert written == []  # not by this process
    key = loader._state_key(loader._layers([rules_dir], False), False)
    _wait_for(lambda: loader._read_state(str(cache), key) is not None)  # complete (atomic rename) and sound
    # SAVE_NOW: written by the caller, before it returns
    loader.load_checker([rules_dir], defaults=False, cache_dir=tmp_path / "now", save=loader.SAVE_NOW)
    assert written == [str(tmp_path / "now")] and len(list((tmp_path / "now").glob("*.state"))) == 1
    monkeypatch.setattr(Checker, "_compile", lambda self: pytest.fail("state rebuilt on a warm start"))
    assert _findings(_load(rules_dir, cache)) == reference


def test_the_writing_child_keeps_no_inherited_descriptor_and_default_signal_actions() -> None:
    import os
    import signal
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    r, w = os.pipe()  # as if the caller's output went to a pipe
    before = signal.signal(signal.SIGTERM, lambda *_a: None)
    try:
        pid = os.fork()
        if pid == 0:  # the child: what _detach left, as bits of the exit status
            status = 0
            try:
                os.dup2(w, 1)
                loader._detach()
                for bit, fd in ((1, listener.fileno()), (2, r), (4, w)):
                    try:
                        os.fstat(fd)
                        status |= bit  # still open
                    except OSError:
                        pass
                null = os.stat(os.devnull).st_rdev
                status |= 8 * any(os.fstat(fd).st_rdev != null for fd in (0, 1, 2))
                status |= 16 * (signal.getsignal(signal.SIGTERM) != signal.SIG_DFL)
                status |= 32 * (not 0 < signal.alarm(0) <= loader._WRITER_SECONDS)  # a deadline was set
            except BaseException:
                status = 99
            finally:
                os._exit(status)
        _pid, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, os.WEXITSTATUS(status)
        os.close(w)
        w = -1
        assert os.read(r, 10) == b""  # the pipe ended: no copy of its write end outlived the caller's
    finally:
        signal.signal(signal.SIGTERM, before)
        listener.close()
        os.close(r)
        if w >= 0:
            os.close(w)


def test_save_must_be_one_of_the_two_modes(rules_dir: Path) -> None:
    from livestream_compliance.errors import UsageError

    with pytest.raises(UsageError, match="save must be"):
        loader.load_checker([rules_dir], defaults=False, cache_dir=None, save="later")


@pytest.mark.parametrize("text", [
    "", "\n", "a 1 x\n\nb 2 y\n", "a 1\n", "a +1 x\n", "a 1 x y\n", "a 1 x\r\n", "a  x\n", "a 1 x\u2028b 2 y",
    "a 99999999999999999999999 x\n", "a １ x\n", "a 1 x", "abc 3 n\nab 2 v\nabc 5 n\n", " 4 x\n", "a 1 \n",
    "中华人民 3 nt\n中华 7 ns\n人 2 n\n中华人民 1 nt\n",
])
def test_the_c_jieba_parse_equals_the_python_one_or_declines(text: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if loader._native is None:
        pytest.skip("the C extension is not built")
    import io

    jieba = loader._verify.import_jieba()
    native = loader._native.jieba_dictionary(text)
    dict_txt = tmp_path / "dict.txt"
    dict_txt.write_bytes(text.encode("utf-8"))

    class FakeJieba:
        __file__ = str(tmp_path / "__init__.py")

    monkeypatch.setattr(loader._verify, "import_jieba", lambda: FakeJieba)
    python = loader._parse_jieba_dict()
    if native is not None:
        assert native == python  # (declining is always safe: the Python parse or jieba decides)
        assert native == jieba.Tokenizer().gen_pfdict(io.BytesIO(text.encode("utf-8")))  # and jieba's own reading


def test_the_packed_jieba_dictionary_reads_the_same_with_and_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    if loader._native is None:
        pytest.skip("the C extension is not built")
    import marshal
    from array import array

    freq = {"最好": 120, "最": 0, "微信": 3_000_000_000, "a\tb": -5, "": 7, "😀x": 1}
    blob = loader._pack_dictionary(freq, 42)
    fast = loader._base_dictionary(blob)  # a Lexicon
    monkeypatch.setattr(loader, "_native", None)
    slow = loader._base_dictionary(blob)  # a dict
    assert fast is not None and slow == (freq, 42) and fast[1] == 42
    assert list(fast[0]) == list(freq) and {k: fast[0][k] for k in fast[0]} == freq  # the same order too
    monkeypatch.undo()
    for words, counts, total in (("a\nb", array("q", [1]).tobytes(), 3), ("a", b"123", 3), ("a", b"", 1), ("a", array("q", [1]).tobytes(), "3")):
        assert loader._base_dictionary(marshal.dumps((words, counts, total))) is None
    assert loader._base_dictionary(b"not marshal") is None
