"""One timeline picture per run (matplotlib): node states over time (derived from the
fault events), the faults, publishes (confirmed or not), deliveries (redelivered ones
apart), reconnects and escaped exceptions."""

from __future__ import annotations

import ast
import io

STATE_COLORS = {
    "running": "#6abf69",
    "down": "#d9534f",
    "hung": "#f0ad4e",
    "minority": "#9e9e9e",
    "alarm": "#b39ddb",
}
#: fault action -> the state it puts its node(s) in
FAULT_STATES = {
    "kill": "down",
    "stop": "down",
    "start": "running",
    "restart": "running",
    "pause": "hung",
    "resume": "running",
    "alarm": "alarm",
    "clear_alarm": "running",
}


def node_states(events: list, nodes: int, end: float) -> dict[str, list[tuple[float, float, str]]]:
    """``{node: [(start, end, state), ...]}`` from the history's fault events."""
    names = [f"node{i + 1}" for i in range(nodes)]
    current = dict.fromkeys(names, "running")
    since = dict.fromkeys(names, 0.0)
    spans: dict[str, list] = {n: [] for n in names}

    def move(node: str, state: str, t: float) -> None:
        if node in current and current[node] != state:
            spans[node].append((since[node], t, current[node]))
            current[node], since[node] = state, t

    for t, kind, details in events:
        if kind != "fault":
            continue
        action, _, rest = str(details.get("action", "")).partition(" ")
        if action in FAULT_STATES:
            move(rest.split()[0] if rest else "", FAULT_STATES[action], t)
        elif action == "partition":
            try:
                groups = ast.literal_eval(rest)
            except (ValueError, SyntaxError):
                continue
            for group in groups:
                state = "minority" if len(group) * 2 <= nodes else "running"
                for node in group:
                    move(node.split("@")[-1], state, t)
        elif action == "heal":
            for node in names:
                if current[node] == "minority":
                    move(node, "running", t)
    for node in names:
        spans[node].append((since[node], max(end, since[node]), current[node]))
    return spans


def render_png(result, width: float = 9.0) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = result.events
    end = max((t for t, _, _ in events), default=1.0) or 1.0
    spans = node_states(events, result.nodes, end)
    rows = [*spans, "publish", "deliver", "client"]
    fig, ax = plt.subplots(figsize=(width, 0.45 * len(rows) + 1.2), dpi=80)
    for y, node in enumerate(spans):
        for start, stop, state in spans[node]:
            ax.barh(y, stop - start, left=start, height=0.6, color=STATE_COLORS[state])
    y_pub, y_del, y_cli = len(spans), len(spans) + 1, len(spans) + 2
    confirmed = [t for t, k, d in events if k == "publish_ok" and d.get("confirmed")]
    unconfirmed = [t for t, k, d in events if k == "publish_ok" and not d.get("confirmed")]
    failed = [t for t, k, _ in events if k in ("publish_fail", "publish_unknown")]
    delivered = [t for t, k, d in events if k == "deliver" and not d.get("redelivered")]
    redelivered = [t for t, k, d in events if k == "deliver" and d.get("redelivered")]
    ax.scatter(confirmed, [y_pub] * len(confirmed), s=6, color="#2e7d32", label="confirmed")
    ax.scatter(unconfirmed, [y_pub] * len(unconfirmed), s=6, color="#90a4ae", label="sent")
    ax.scatter(
        failed, [y_pub] * len(failed), s=30, marker="x", color="#c62828", label="failed/unknown"
    )
    ax.scatter(delivered, [y_del] * len(delivered), s=6, color="#1565c0", label="delivered")
    ax.scatter(redelivered, [y_del] * len(redelivered), s=12, color="#ef6c00", label="redelivered")
    reconnects = [t for t, k, _ in events if k == "recovery_succeeded"]
    escaped = [t for t, k, _ in events if k == "escaped"]
    ax.scatter(
        reconnects, [y_cli] * len(reconnects), s=40, marker="^", color="#6a1b9a", label="reconnect"
    )
    ax.scatter(escaped, [y_cli] * len(escaped), s=60, marker="X", color="#000", label="escaped")
    for t, kind, details in events:
        if kind == "fault":
            ax.axvline(t, color="#555", linewidth=0.8, linestyle=":")
            ax.text(
                t,
                len(rows) - 0.4,
                str(details.get("action", ""))[:28],
                fontsize=7,
                rotation=20,
                va="bottom",
            )
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlim(0, end * 1.02)
    ax.set_ylim(-0.6, len(rows) + 0.6)
    ax.set_xlabel("seconds (virtual)" if result.backend == "virtual" else "seconds")
    ax.set_title(f"{result.scenario}  seed {result.seed}  [{result.verdict}]", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=8, fontsize=7, frameon=False)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.8, bottom=0.3)  # tight_layout costs 3x
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
