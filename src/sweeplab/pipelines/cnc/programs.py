"""Synthetic CNC programs in the style a CAM post-processor writes.

A program is a header (units, absolute mode, plane, work offset, tool change, spindle on),
then machining operations on one stock block: facing passes (zig-zag ``G1`` with modal
continuation lines), pockets (rounded rectangles and circles cut with ``G2``/``G3``, arcs
given by ``I J`` or ``R``), drilling (``G1`` plunges, sometimes a dwell ``G4`` or a canned
``G81`` cycle) and, now and then, a tool change; then a footer. As in real programs, motion
commands make up most lines and set-up commands (``G21 G90 G17 G54 M6 M8 M9 G4 G81 M30``)
appear once or a few times per program: they are genuinely rare.
"""

from __future__ import annotations

import numpy as np

STOCK = (0.0, 100.0)  # the block's x and y extent, mm; its top face is z = 0
SAFE_Z = 5.0


def fmt(value: float) -> str:
    """A coordinate as post-processors write it: at most two decimals, ``40.`` for whole mm."""
    text = f"{value:.2f}".rstrip("0")
    return "0." if text in ("-0.", "0.") else text


class _Writer:
    """Collects the lines of one program; numbered programs get ``N`` labels."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.numbered = rng.random() < 0.4
        self.lines: list[str] = []

    def add(self, text: str, comment: str | None = None) -> None:
        if self.numbered and text:
            text = f"N{10 * (len(self.lines) + 1)} {text}"
        if comment:
            text = f"{text} ({comment})" if self.rng.random() < 0.5 else f"{text} ; {comment}"
        self.lines.append(text)


def _feed(rng: np.random.Generator) -> int:
    return int(rng.choice([300, 400, 500, 600, 800, 1000, 1200]))


def _depth(rng: np.random.Generator) -> float:
    return float(rng.choice([0.5, 1.0, 1.5, 2.0, 3.0]))


def facing(w: _Writer) -> None:
    rng = w.rng
    x0, x1 = sorted(rng.uniform(*STOCK, 2).round(1))
    y0 = round(float(rng.uniform(0, 60)), 1)
    step, passes = float(rng.choice([4.0, 5.0, 6.0, 8.0])), int(rng.integers(3, 8))
    w.add(f"G0 X{fmt(x0)} Y{fmt(y0)}", "facing" if rng.random() < 0.5 else None)
    w.add("Z1.")
    w.add(f"G1 Z{fmt(-_depth(rng) / 2)} F{_feed(rng) // 2}")
    w.add(f"X{fmt(x1)} F{_feed(rng)}")
    for i in range(1, passes):
        w.add(f"Y{fmt(y0 + i * step)}")
        w.add(f"X{fmt(x0 if i % 2 else x1)}")
    w.add(f"G0 Z{fmt(SAFE_Z)}")


def pocket(w: _Writer) -> None:
    rng = w.rng
    cx, cy = rng.uniform(25, 75, 2).round(1)
    depth, feed = _depth(rng), _feed(rng)
    ccw = rng.random() < 0.6  # climb milling inside a pocket runs counter-clockwise
    arc = "G3" if ccw else "G2"
    if rng.random() < 0.3:  # circular pocket: one full circle per level
        r = round(float(rng.uniform(4, 20)), 1)
        w.add(f"G0 X{fmt(cx + r)} Y{fmt(cy)}", "circular pocket" if rng.random() < 0.5 else None)
        w.add(f"G1 Z{fmt(-depth)} F{feed // 2}")
        w.add(f"{arc} X{fmt(cx + r)} Y{fmt(cy)} I{fmt(-r)} J0. F{feed}")
        w.add(f"G0 Z{fmt(SAFE_Z)}")
        return
    hw, hh = rng.uniform(5, 22, 2).round(1)
    r = round(float(min(hw, hh, rng.uniform(1, 6))), 1)
    use_r = rng.random() < 0.35  # some posts write arcs with R instead of I J
    # a rounded rectangle, counter-clockwise from its bottom edge: each step is
    # (end point, arc centre or None for a straight edge)
    left, right, bottom, top = cx - hw, cx + hw, cy - hh, cy + hh
    path = [((right - r, bottom), None), ((right, bottom + r), (right - r, bottom + r)),
            ((right, top - r), None), ((right - r, top), (right - r, top - r)),
            ((left + r, top), None), ((left, top - r), (left + r, top - r)),
            ((left, bottom + r), None), ((left + r, bottom), (left + r, bottom + r))]
    if not ccw:  # the same edges walked backwards
        ends = [end for end, _ in path]
        path = [(ends[i - 2], path[i - 1][1]) for i in range(len(path), 0, -1)]
    (x, y), _ = path[-1]
    w.add(f"G0 X{fmt(x)} Y{fmt(y)}", "pocket" if rng.random() < 0.5 else None)
    w.add(f"G1 Z{fmt(-depth)} F{feed // 2}")
    for i, ((ex, ey), centre) in enumerate(path):
        feed_word = f" F{feed}" if i == 0 else ""
        if centre is None:
            w.add(f"G1 X{fmt(ex)} Y{fmt(ey)}{feed_word}")
        elif use_r:
            w.add(f"{arc} X{fmt(ex)} Y{fmt(ey)} R{fmt(r)}{feed_word}")
        else:
            w.add(f"{arc} X{fmt(ex)} Y{fmt(ey)} I{fmt(centre[0] - x)} J{fmt(centre[1] - y)}{feed_word}")
        x, y = ex, ey
    w.add(f"G0 Z{fmt(SAFE_Z)}")


def contour(w: _Writer) -> None:
    """A free-form profile as CAM software writes it: one G1, then many short modal moves."""
    rng = w.rng
    n = int(rng.integers(15, 45))
    cx, cy = rng.uniform(30, 70, 2)
    radius = rng.uniform(10, 28) * (1 + 0.25 * np.sin(np.linspace(0, 2 * np.pi, n) * rng.integers(2, 5)
                                                      + rng.uniform(0, 2 * np.pi)))
    angle = np.linspace(0, 2 * np.pi, n) * (1 if rng.random() < 0.6 else -1)
    xs, ys = cx + radius * np.cos(angle), cy + radius * np.sin(angle)
    w.add(f"G0 X{fmt(xs[0])} Y{fmt(ys[0])}", "contour" if rng.random() < 0.5 else None)
    w.add(f"G1 Z{fmt(-_depth(rng))} F{_feed(rng) // 2}")
    w.add(f"X{fmt(xs[1])} Y{fmt(ys[1])} F{_feed(rng)}")
    for x, y in zip(xs[2:], ys[2:], strict=True):
        w.add(f"X{fmt(x)} Y{fmt(y)}")
    w.add(f"G0 Z{fmt(SAFE_Z)}")


def drilling(w: _Writer) -> None:
    rng = w.rng
    holes = rng.uniform(10, 90, (int(rng.integers(2, 6)), 2)).round(1)
    depth, feed = float(rng.choice([3.0, 5.0, 8.0])), int(rng.choice([80, 100, 150]))
    if rng.random() < 0.15:  # a canned drilling cycle
        for i, (x, y) in enumerate(holes):
            w.add(f"G81 X{fmt(x)} Y{fmt(y)} Z{fmt(-depth)} R2. F{feed}", "drill cycle" if i == 0 else None)
        w.add("G80")
        return
    dwell = rng.random() < 0.2
    for x, y in holes:
        w.add(f"G0 X{fmt(x)} Y{fmt(y)}")
        w.add("Z2.")
        w.add(f"G1 Z{fmt(-depth)} F{feed}")
        if dwell:
            w.add("G4 P0.5")
        w.add(f"G0 Z{fmt(SAFE_Z)}")


def tool_change(w: _Writer, tool: int, speed: int) -> None:
    w.add("M5")
    w.add(f"G0 Z{fmt(SAFE_Z * 8)}")
    w.add(f"T{tool} M6", "tool change")
    w.add(f"S{speed} M3")


def generate_program(rng: np.random.Generator, name: str, *, operations: tuple[int, int] = (3, 7)) -> str:
    """One program as the text of a ``.nc`` file."""
    w = _Writer(rng)
    w.lines.append("%")
    w.lines.append(f"({name})")
    w.add("G21 G90 G17", "mm, absolute, XY plane")
    w.add("G54")
    tool, speed = int(rng.integers(1, 9)), int(rng.choice([3000, 5000, 6000, 8000, 10000, 12000]))
    w.add(f"T{tool} M6")
    w.add(f"S{speed} M3")
    coolant = rng.random() < 0.5
    if coolant:
        w.add("M8", "coolant on")
    w.add(f"G0 Z{fmt(SAFE_Z)}")
    for _ in range(int(rng.integers(*operations))):
        if rng.random() < 0.12:
            tool_change(w, int(rng.integers(1, 9)), int(rng.choice([3000, 6000, 8000, 12000])))
        op = rng.choice(4, p=[0.2, 0.3, 0.3, 0.2])
        (facing, pocket, contour, drilling)[op](w)
    if coolant:
        w.add("M9")
    w.add("M5")
    w.add(f"G0 Z{fmt(SAFE_Z * 8)}")
    w.add("M30")
    w.lines.append("%")
    return "\n".join(w.lines) + "\n"
