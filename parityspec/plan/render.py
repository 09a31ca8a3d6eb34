"""The plan as text (one step a line, with its inputs) or as a Mermaid graph for PRs."""

from __future__ import annotations

from parityspec.plan.graph import Plan


def as_text(plan: Plan, spec_name: str) -> str:
    width = max(len(s.id) for s in plan.steps)
    lines = [f"plan for {spec_name}: {len(plan.steps)} steps"]
    for number, step in enumerate(plan.steps, 1):
        after = f"  <- {', '.join(step.deps)}" if step.deps else ""
        lines.append(f"{number:>3}. {step.id:<{width}}  [{step.key[:12]}]{after}")
    return "\n".join(lines + _expansion(plan))


def _expansion(plan: Plan) -> list[str]:
    """What each backend matrix expanded to. A name holds `[` only when a matrix made it
    (spec names cannot), so the steps say it."""
    swept: dict[tuple[str, str], list[str]] = {}
    for step in plan.steps:
        if step.action in ("model", "check") and step.subject and "[" in step.subject:
            base, values = step.subject.split("[", 1)
            what = "backend" if step.action == "model" else "check"
            swept.setdefault((what, base), []).append(values.removesuffix("]"))
    lines = []
    for (what, base), combos in swept.items():
        if what == "backend":
            lines.append(
                f"matrix: backend {base} -> {len(combos)} combinations: {'; '.join(combos)}"
            )
        else:
            lines.append(f"matrix: check {base} -> {len(combos)} checks")
    return lines


def as_mermaid(plan: Plan) -> str:
    node = {s.id: f"s{i}" for i, s in enumerate(plan.steps)}
    lines = ["flowchart LR"]
    lines += [f'  {node[s.id]}["{s.id}"]' for s in plan.steps]
    lines += [f"  {node[d]} --> {node[s.id]}" for s in plan.steps for d in s.deps]
    return "\n".join(lines)
