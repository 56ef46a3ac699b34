"""``ttlive fsm``: draw the state machines we run, read from their transition tables (never a copy of them).

``--draw order|connection|halt`` prints one machine as a Mermaid ``stateDiagram-v2`` (default) or Graphviz dot;
``--markdown`` prints docs/state-machines.md (all three, with how to read them). Every entry of a table is one
edge label; entries sharing a source and a target share an arrow. A connection entry whose target depends on
counters and time (a ``Guard``) leads to a choice node, whose arrows are the guard's possible outcomes.
Exit status: 0 printed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from tools.exitcodes import EXIT_OK, EXIT_USAGE

MACHINES: tuple[str, ...] = ("order", "connection", "halt")
FORMATS: tuple[str, ...] = ("mermaid", "dot")
GUARD_PREFIX = "guard_"  # choice nodes are named after their guard, kept apart from state names
INDENT = "    "
DOC_PATH = "docs/state-machines.md"
DOC_COMMAND = "ttlive fsm --markdown > docs/state-machines.md"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Drawing:
    """One machine as drawable data: taken from its module's ``ROWS`` (and ``GUARD_OUTCOMES``), nothing added."""

    name: str
    summary: str  # the first paragraph of the machine module's docstring
    source: str  # the module that holds the table
    initial: str
    states: tuple[str, ...]  # every state, in enum order
    edges: tuple[tuple[str, str, str], ...]  # (state, event, target): one per table entry, in table order
    choices: dict[str, tuple[str, ...]]  # choice node -> the states its guard may lead to
    final: tuple[str, ...]  # states whose row is empty (absorbing)

    def arrows(self) -> list[tuple[str, str, list[str]]]:
        """(source, target, events): the table's entries grouped by arrow, in order of first appearance."""
        grouped: dict[tuple[str, str], list[str]] = {}
        for state, event, target in self.edges:
            grouped.setdefault((state, target), []).append(event)
        return [(source, target, events) for (source, target), events in grouped.items()]


def _summary(module: Any) -> str:
    return " ".join(str(module.__doc__).strip().split("\n\n")[0].split())


def order_drawing() -> Drawing:
    from core import order_fsm

    initial = next(f.default for f in dataclasses.fields(order_fsm.Order) if f.name == "state")
    assert isinstance(initial, order_fsm.OrderState)
    rows = order_fsm.ROWS
    return Drawing(
        name="order", summary=_summary(order_fsm), source=order_fsm.__name__, initial=initial.value,
        states=tuple(s.value for s in order_fsm.OrderState),
        edges=tuple((s.value, e.value, t.value) for s, row in rows.items() for e, t in row.items()),
        choices={}, final=tuple(s.value for s, row in rows.items() if not row),
    )


def connection_drawing() -> Drawing:
    from core import connection_fsm as c

    def target(t: c.ConnState | c.Guard) -> str:
        return GUARD_PREFIX + t.value if isinstance(t, c.Guard) else t.value

    rows = c.ROWS
    return Drawing(
        name="connection", summary=_summary(c), source=c.__name__, initial=c.ConnectionMachine("draw").state.value,
        states=tuple(s.value for s in c.ConnState),
        edges=tuple((s.value, e.__name__, target(t)) for s, row in rows.items() for e, t in row.items()),
        choices={GUARD_PREFIX + g.value: tuple(s.value for s in c.ConnState if s in outcomes)
                 for g, outcomes in c.GUARD_OUTCOMES.items()},
        final=tuple(s.value for s, row in rows.items() if not row),
    )


def halt_drawing() -> Drawing:
    from core import halt_fsm

    rows = halt_fsm.ROWS
    return Drawing(
        name="halt", summary=_summary(halt_fsm), source=halt_fsm.__name__, initial=halt_fsm.HaltMachine().state.value,
        states=tuple(s.value for s in halt_fsm.HaltState),
        edges=tuple((s.value, e.__name__, t.value) for s, row in rows.items() for e, t in row.items()),
        choices={}, final=tuple(s.value for s, row in rows.items() if not row),
    )


DRAWINGS: dict[str, Callable[[], Drawing]] = {
    "order": order_drawing,
    "connection": connection_drawing,
    "halt": halt_drawing,
}
# How to read what the table alone cannot say (the rules each machine's interpreter adds to its table).
NOTES: dict[str, str] = {
    "order": (
        "A venue report with no edge, once the order has left the process, is stale: ignored, the state kept. "
        "Any other event with no edge raises `IllegalTransition`. Executions fire `partial_fill` / `fill` through "
        "the same table; one that arrives after a terminal report and is covered by the venue's numbers is a late "
        "fill (counted, state kept). Final states (no edges) are drawn to the end marker."
    ),
    "connection": (
        "A diamond is a guarded entry: its target depends on counters and time, and its arrows are every state "
        "`GUARD_OUTCOMES` allows. An event with no edge raises `IllegalTransition`."
    ),
    "halt": "An event with no edge raises `IllegalTransition`. Only `ManualReset` (operator and reason) leaves HALTED.",
}


def drawing(machine: str) -> Drawing:
    return DRAWINGS[machine]()


def mermaid(d: Drawing) -> str:
    lines = ["stateDiagram-v2", f"{INDENT}%% {d.name}: generated from {d.source}.ROWS by `ttlive fsm --draw {d.name}`"]
    lines += [f"{INDENT}state {node} <<choice>>" for node in d.choices]
    lines.append(f"{INDENT}[*] --> {d.initial}")
    for source, target, events in d.arrows():
        lines.append(f"{INDENT}{source} --> {target} : {', '.join(events)}")
    for node, outcomes in d.choices.items():
        guard = node.removeprefix(GUARD_PREFIX)
        lines += [f"{INDENT}{node} --> {outcome} : [{guard}]" for outcome in outcomes]
    lines += [f"{INDENT}{state} --> [*]" for state in d.final]
    return "\n".join(lines) + "\n"


def dot(d: Drawing) -> str:
    lines = [
        f'digraph "{d.name}" {{',
        f"{INDENT}// generated from {d.source}.ROWS by `ttlive fsm --draw {d.name} --format dot`",
        f"{INDENT}rankdir=LR;",
        f'{INDENT}node [shape=box, style=rounded, fontname="Helvetica"];',
        f'{INDENT}edge [fontname="Helvetica", fontsize=10];',
        f'{INDENT}"__start" [shape=point, label=""];',
    ]
    for state in d.states:
        extra = ", peripheries=2" if state in d.final else ""
        lines.append(f'{INDENT}"{state}" [label="{state}"{extra}];')
    for node in d.choices:
        lines.append(f'{INDENT}"{node}" [shape=diamond, style="", label="{node.removeprefix(GUARD_PREFIX)}"];')
    lines.append(f'{INDENT}"__start" -> "{d.initial}";')
    for source, target, events in d.arrows():
        lines.append(f'{INDENT}"{source}" -> "{target}" [label="{", ".join(events)}"];')
    for node, outcomes in d.choices.items():
        lines += [f'{INDENT}"{node}" -> "{outcome}" [style=dashed];' for outcome in outcomes]
    lines.append("}")
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Drawing], str]] = {"mermaid": mermaid, "dot": dot}


def render(machine: str, fmt: str = "mermaid") -> str:
    return RENDERERS[fmt](drawing(machine))


def markdown() -> str:
    """docs/state-machines.md: the three diagrams with how to read them (a test keeps the file equal to this)."""
    parts = [
        "# State machines",
        "",
        f"Generated by `{DOC_COMMAND}` from the transition tables the engine runs; do not edit by hand "
        "(tests/core/test_fsm_draw.py fails when this file and the tables differ). One machine at a time: "
        "`ttlive fsm --draw order|connection|halt [--format mermaid|dot]`.",
        "",
        "Each arrow carries every event of the table that takes it, so each table entry appears exactly once.",
    ]
    for machine in MACHINES:
        d = drawing(machine)
        parts += [
            "",
            f"## {machine}",
            "",
            f"{d.summary} (`{d.source}`: {len(d.states)} states, {len(d.edges)} table entries.)",
            "",
            NOTES[machine],
            "",
            "```mermaid",
            mermaid(d).rstrip("\n"),
            "```",
        ]
    return "\n".join(parts) + "\n"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "fsm",
        help="draw a state machine from the table the engine runs (Mermaid or Graphviz dot)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--draw", choices=MACHINES, metavar="|".join(MACHINES), help="the machine to draw")
    what.add_argument("--markdown", action="store_true", help=f"print {DOC_PATH} (all three machines)")
    parser.add_argument("--format", choices=FORMATS, default="mermaid", help="output format (default: mermaid)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.markdown and args.format != "mermaid":
        print(f"ttlive fsm: --markdown embeds Mermaid diagrams; --format {args.format} applies to --draw only",
              file=sys.stderr)
        return EXIT_USAGE
    text = markdown() if args.markdown else render(args.draw, args.format)
    sys.stdout.write(text)
    return EXIT_OK
