"""What `verifier run` prints: failure blocks sized to the terminal, colour only where wanted, progress in CI."""

from __future__ import annotations

import io

from verifier import Runner, make_case
from verifier.report import tables
from verifier.report.ci import first_line
from verifier.report.terminal import Progress, failure_block, print_summary, use_colour


def _results():
    runner = Runner(forward_mode=False, second_order=False)
    cases = [make_case("term.right", {"x": [1.0, 2.0]}, forward="(x**2).sum()"),
             make_case("term.wrong", {"x": [1.0, -2.0, 0.5]}, torch="(2 * x**2).sum()", sympy="(x**2).sum()")]
    return cases, [runner.run(c, "float64") for c in cases]


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_colour_honours_no_color(monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(_Tty()) and not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(_Tty())


def test_a_failure_block_wraps_at_whole_words_and_says_who_is_wrong():
    _, results = _results()
    wrong = results[1]
    row = tables.summary([wrong]).to_dict("records")[0]
    block = failure_block(wrong, row, width=60)
    lines = block.splitlines()
    assert lines[0].startswith("FAIL    term.wrong [float64]  who is wrong: ")
    assert all(len(line) <= 60 for line in lines[1:])
    assert "3/3 elements wrong, max rel 1" in block
    words = set(wrong.message.split()) | set(first_line(wrong, row).split()) | {"…"}
    assert {w for line in lines[2:] for w in line.split()} <= words    # wrapped at spaces: no number is cut
    assert "\033[" not in block and "\033[31m" in failure_block(wrong, row, 60, colour=True)


def test_print_summary_lists_the_failure_and_the_reports():
    _, results = _results()
    out = io.StringIO()
    print_summary(results, {"summary": "s.csv", "details": "d.csv", "html": "r.html", "json": "r.json"}, file=out)
    text = out.getvalue()
    assert text.startswith("1 pass, 1 fail") and "FAIL    term.wrong" in text and "term.right [" not in text
    assert "reports: s.csv, d.csv, r.html, r.json" in text


def test_progress_prints_plain_lines_when_not_a_terminal(monkeypatch):
    cases, results = _results()
    stream = io.StringIO()
    progress = Progress([(c, "float64") for c in cases], stream=stream)
    progress.result(results[0])
    progress.result(results[1])
    progress.writing("report.html")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "verifying 2 case x dtype run(s)"
    assert "verifying: 2/2 done, 1 not passing" in lines
    assert lines[-1] == "writing reports: report.html"


def test_progress_names_the_running_case():
    cases, results = _results()
    progress = Progress([(c, "float64") for c in cases], stream=_Tty())
    assert progress._running() == "term.right [float64]"
    progress.result(results[0])
    assert progress._running() == "term.wrong [float64]"          # the next one, not the one that finished
    progress.close()
