"""The plan as text (one step a line, with its inputs) or as a Mermaid graph for PRs."""

from __future__ import annotations

from parityspec.plan.graph import Plan


def as_text(plan: Plan, spec_name: str) -> str:
    width = max(len(s.id) for s in plan.steps)
    lines = [f"plan for {spec_name}: {len(plan.steps)} steps"]
    for number, step in enumerate(plan.steps, 1):
        after = f"  <- {', '.join(step.deps)}" if step.deps else ""
        lines.append(f"{number:>3}. {step.id:<{width}}  [{step.key[:12]}]{after}")
    return "\n".join(lines)


def as_mermaid(plan: Plan) -> str:
    node = {s.id: f"s{i}" for i, s in enumerate(plan.steps)}
    lines = ["flowchart LR"]
    lines += [f'  {node[s.id]}["{s.id}"]' for s in plan.steps]
    lines += [f"  {node[d]} --> {node[s.id]}" for s in plan.steps for d in s.deps]
    return "\n".join(lines)
