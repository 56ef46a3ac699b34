"""``ttlive fsm --draw``: the diagrams are the tables we run, every entry once, and docs/state-machines.md is current.

The parsers here are deliberately small and strict: the Mermaid one accepts only the shape ``tools.cmd_fsm`` is
meant to emit (a ``stateDiagram-v2`` of states, choice nodes and labelled transitions), so a malformed line fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from core import connection_fsm, halt_fsm, order_fsm
from tools import cmd_fsm
from tools.cli import main
from tools.exitcodes import EXIT_USAGE

ROOT = Path(__file__).resolve().parents[2]
ID = r"[a-z][a-z0-9_]*"
MERMAID_LINE = re.compile(
    rf"^    (?:%% .*"
    rf"|state (?P<choice>{ID}) <<choice>>"
    rf"|(?P<src>\[\*\]|{ID}) --> (?P<dst>\[\*\]|{ID})(?: : (?P<label>[^:]+))?)$"
)
DOT_EDGE = re.compile(r'^    "(?P<src>[^"]+)" -> "(?P<dst>[^"]+)"(?: \[(?P<attrs>[^\]]*)\])?;$')


def table_entries(machine: str) -> Counter[tuple[str, str, str]]:
    """(state, event, target) for every entry of the module's table, straight from the module."""
    if machine == "order":
        return Counter((s.value, e.value, t.value) for (s, e), t in order_fsm.TRANSITIONS.items())
    if machine == "halt":
        return Counter((s.value, e.__name__, t.value) for (s, e), t in halt_fsm.TRANSITIONS.items())
    prefix = cmd_fsm.GUARD_PREFIX
    return Counter(
        (s.value, e.__name__, prefix + t.value if isinstance(t, connection_fsm.Guard) else t.value)
        for (s, e), t in connection_fsm.TRANSITIONS.items()
    )


def states_of(machine: str) -> set[str]:
    enum = {"order": order_fsm.OrderState, "connection": connection_fsm.ConnState, "halt": halt_fsm.HaltState}
    return {s.value for s in enum[machine]}


def parse_mermaid(text: str) -> tuple[set[str], list[tuple[str, str, str | None]]]:
    """(choice nodes, arrows as (source, target, label)); fails on anything outside the expected shape."""
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "stateDiagram-v2"
    choices: set[str] = set()
    arrows: list[tuple[str, str, str | None]] = []
    for line in lines[1:]:
        m = MERMAID_LINE.match(line)
        assert m is not None, f"not a Mermaid state diagram line: {line!r}"
        if m["choice"]:
            choices.add(m["choice"])
        elif m["src"]:
            arrows.append((m["src"], m["dst"], m["label"]))
    return choices, arrows


def mermaid_entries(machine: str, text: str) -> Counter[tuple[str, str, str]]:
    choices, arrows = parse_mermaid(text)
    states = states_of(machine)
    entries: Counter[tuple[str, str, str]] = Counter()
    for src, dst, label in arrows:
        assert src in states | choices | {"[*]"} and dst in states | choices | {"[*]"}, (src, dst)
        if src == "[*]" or dst == "[*]" or src in choices:
            continue  # the start, the end markers, a guard's outcomes: not table entries
        assert label, f"an arrow without its events: {src} --> {dst}"
        for event in label.split(", "):
            entries[(src, event, dst)] += 1
    return entries


@pytest.mark.parametrize("machine", cmd_fsm.MACHINES)
def test_every_table_entry_appears_exactly_once_in_the_mermaid(machine: str) -> None:
    assert mermaid_entries(machine, cmd_fsm.render(machine, "mermaid")) == table_entries(machine)


@pytest.mark.parametrize("machine", cmd_fsm.MACHINES)
def test_every_table_entry_appears_exactly_once_in_the_dot(machine: str) -> None:
    text = cmd_fsm.render(machine, "dot")
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == f'digraph "{machine}" {{' and lines[-1] == "}" and text.count("{") == text.count("}")
    entries: Counter[tuple[str, str, str]] = Counter()
    for line in lines:
        m = DOT_EDGE.match(line)
        if m is None or m["src"] == "__start" or m["src"].startswith(cmd_fsm.GUARD_PREFIX):
            continue
        label = re.fullmatch(r'label="([^"]+)"', m["attrs"] or "")
        assert label is not None, line
        for event in label[1].split(", "):
            entries[(m["src"], event, m["dst"])] += 1
    assert entries == table_entries(machine)


@pytest.mark.parametrize("machine", cmd_fsm.MACHINES)
def test_the_diagram_shows_every_state_the_start_and_the_absorbing_states(machine: str) -> None:
    choices, arrows = parse_mermaid(cmd_fsm.render(machine))
    drawn = {s for a in arrows for s in a[:2]} - {"[*]"} - choices
    assert drawn == states_of(machine)  # none missing, none invented
    starts = [dst for src, dst, _ in arrows if src == "[*]"]
    ends = {src for src, dst, _ in arrows if dst == "[*]"}
    rows = {"order": order_fsm.ROWS, "connection": connection_fsm.ROWS, "halt": halt_fsm.ROWS}[machine]
    assert ends == {s.value for s, row in rows.items() if not row}
    initial = {"order": "created", "connection": "disconnected", "halt": "active"}[machine]
    assert starts == [initial]


def test_the_order_machine_ends_in_exactly_its_terminal_set() -> None:
    _, arrows = parse_mermaid(cmd_fsm.render("order"))
    assert {src for src, dst, _ in arrows if dst == "[*]"} == {s.value for s in order_fsm.TERMINAL}


def test_each_connection_guard_leads_to_exactly_its_outcomes() -> None:
    choices, arrows = parse_mermaid(cmd_fsm.render("connection"))
    prefix = cmd_fsm.GUARD_PREFIX
    assert choices == {prefix + g.value for g in connection_fsm.Guard}
    for guard, outcomes in connection_fsm.GUARD_OUTCOMES.items():
        drawn = [dst for src, dst, _ in arrows if src == prefix + guard.value]
        assert sorted(drawn) == sorted(s.value for s in outcomes)
    # and every choice node is reached from the table
    assert {dst for _, dst, _ in arrows if dst in choices} == choices


def test_cli_prints_the_diagram(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fsm", "--draw", "halt"]) == 0
    assert capsys.readouterr().out == cmd_fsm.render("halt", "mermaid")
    assert main(["fsm", "--draw", "connection", "--format", "dot"]) == 0
    assert capsys.readouterr().out == cmd_fsm.render("connection", "dot")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fsm", "--draw", "kill_switch"], "invalid choice: 'kill_switch'"),
        (["fsm", "--draw", "order", "--format", "png"], "invalid choice: 'png'"),
        (["fsm"], "one of the arguments --draw --markdown is required"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "order" in err  # the choices are named


def test_markdown_with_dot_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fsm", "--markdown", "--format", "dot"]) == EXIT_USAGE
    assert "--format dot" in capsys.readouterr().err


def test_docs_state_machines_md_matches_the_tables_we_run() -> None:
    doc = ROOT / cmd_fsm.DOC_PATH
    assert doc.read_text() == cmd_fsm.markdown(), f"stale: regenerate with `{cmd_fsm.DOC_COMMAND}`"


def test_the_doc_embeds_each_machine_exactly_as_drawn() -> None:
    text = (ROOT / cmd_fsm.DOC_PATH).read_text()
    assert text.startswith("# State machines\n\nGenerated by `ttlive fsm --markdown")
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.DOTALL)
    assert blocks == [cmd_fsm.render(machine) for machine in cmd_fsm.MACHINES]


def test_registering_the_command_imports_no_engine_code() -> None:
    # The CLI stays lazy (`ttlive --help` imports every command module): the tables load only when drawn.
    code = ("import argparse, sys, tools.cmd_fsm as m; m.register(argparse.ArgumentParser().add_subparsers()); "
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('core', 'adapters', 'sim')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"
