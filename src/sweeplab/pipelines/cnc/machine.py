"""A 3-axis milling machine that runs a parsed program and records its sensors.

The tool path is interpolated at ``sample_hz`` with a trapezoidal velocity profile (the
controller's acceleration limit), so every sample belongs to the program line that was
executing. The recorded channels are what a retrofit data logger sees on such a machine:

- ``current_x/y/z``: axis motor current = friction (sign of velocity) + viscous term +
  inertia (acceleration) + the cutting force on that axis (+ gravity on z);
- ``current_spindle``: idle current growing with speed, a spin-up surge after ``M3``, and
  the cutting load (material removal rate);
- ``vibration``: an RMS envelope from spindle speed, cutting load, acceleration and coolant.

Each machine has its own channel gains and its own logging lag: the controller reports the
block it is preparing, up to ``max_line_lead_s`` before the axes execute it, so the ``line``
column runs ahead of the signals as on real controllers with look-ahead. Every recording adds
slow thermal drift and Gaussian noise. Positions are not recorded: the target coordinates of a line can only be
inferred from how the machine moved, as with real current sensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweeplab.config import NonNegativeFloat, PositiveFloat, PositiveInt
from sweeplab.gcode_language.parser import Block

CHANNELS = ("current_x", "current_y", "current_z", "current_spindle", "vibration")
TIME, LINE = "time_s", "line"  # the two leading columns of a sensor CSV


@dataclass(frozen=True)
class MachineConfig:
    sample_hz: PositiveFloat = 20.0
    rapid_mm_min: PositiveFloat = 4000.0
    accel_mm_s2: PositiveFloat = 300.0
    noise: NonNegativeFloat = 0.1  # Gaussian noise, in units of each channel's typical level
    drift: NonNegativeFloat = 0.05  # amplitude of slow drift
    gain_spread: NonNegativeFloat = 0.15  # log-normal spread of per-machine channel gains
    n_machines: PositiveInt = 3
    max_line_lead_s: NonNegativeFloat = 0.5  # the most a machine's line log runs ahead of its axes


# seconds a non-motion command keeps the machine busy
BUSY_S = {"M3": 1.0, "M5": 0.8, "M6": 4.0, "M8": 0.3, "M9": 0.3, "M30": 0.5}
SETUP_S = 0.1  # G21, G90, G54, G80 ...


def machine_traits(config: MachineConfig, machine: int) -> tuple[np.ndarray, int]:
    """Per-channel gains and the line-log lead (samples) of one machine, fixed by its index."""
    rng = np.random.default_rng(10_000 + machine)
    gains = np.exp(rng.normal(0.0, config.gain_spread, len(CHANNELS)))
    return gains, round(rng.uniform(0, config.max_line_lead_s) * config.sample_hz)


def _profile(length: float, speed: float, accel: float, dt: float) -> np.ndarray:
    """Fractions (0, 1] of a move of ``length`` done at each sample: trapezoidal velocity."""
    if length <= 1e-9:
        return np.ones(1)
    if length >= speed**2 / accel:
        t_acc = speed / accel
        total = length / speed + t_acc
    else:
        t_acc = math.sqrt(length / accel)
        total, speed = 2 * t_acc, accel * t_acc
    t = np.minimum(np.arange(1, math.ceil(total / dt) + 1) * dt, total)
    accel_part = 0.5 * accel * np.minimum(t, t_acc) ** 2
    cruise = speed * np.clip(t - t_acc, 0, total - 2 * t_acc)
    decel_t = np.clip(t - (total - t_acc), 0, t_acc)
    decel_part = speed * decel_t - 0.5 * accel * decel_t**2
    return np.minimum((accel_part + cruise + decel_part) / length, 1.0)


def _arc_centre(start: np.ndarray, end: np.ndarray, words: dict[str, float], clockwise: bool, where: str
                ) -> np.ndarray:
    if "I" in words or "J" in words:
        return start[:2] + np.array([words.get("I", 0.0), words.get("J", 0.0)])
    if "R" not in words:
        raise ValueError(f"{where}: an arc needs I/J or R")
    radius = words["R"]
    chord = end[:2] - start[:2]
    half = np.linalg.norm(chord) / 2
    if half < 1e-9 or abs(radius) < half - 1e-6:
        raise ValueError(f"{where}: arc radius R{radius} cannot join the start and end points")
    mid, normal = start[:2] + chord / 2, np.array([-chord[1], chord[0]]) / (2 * half)
    offset = math.sqrt(max(radius**2 - half**2, 0.0))
    # R > 0 takes the short way round, R < 0 the long way
    candidates = [mid + offset * normal, mid - offset * normal]
    sweeps = [abs(_sweep(start, end, c, clockwise)) for c in candidates]
    short = int(np.argmin(sweeps))
    return candidates[short if radius > 0 else 1 - short]


def _sweep(start: np.ndarray, end: np.ndarray, centre: np.ndarray, clockwise: bool) -> float:
    a0 = math.atan2(start[1] - centre[1], start[0] - centre[0])
    a1 = math.atan2(end[1] - centre[1], end[0] - centre[0])
    turn = (a0 - a1) % (2 * math.pi) if clockwise else (a1 - a0) % (2 * math.pi)
    if turn < 1e-9:
        turn = 2 * math.pi  # same start and end: a full circle
    return -turn if clockwise else turn


class _Run:
    """The machine's state while it executes a program, and the samples it records."""

    def __init__(self, config: MachineConfig):
        self.config = config
        self.dt = 1.0 / config.sample_hz
        self.pos = np.array([0.0, 0.0, 50.0])
        self.feed = 500.0
        self.speed = 0.0  # spindle rpm, 0 when off
        self.speed_word = 0.0
        self.coolant = 0.0
        self.positions: list[np.ndarray] = []
        self.feeding: list[np.ndarray] = []  # 1 where the tool moves at feed (can cut)
        self.spindle: list[np.ndarray] = []
        self.surge: list[np.ndarray] = []  # spin-up surge on the spindle current
        self.coolant_on: list[np.ndarray] = []
        self.lines: list[np.ndarray] = []

    def _record(self, path: np.ndarray, line: int, feeding: bool, surge: np.ndarray | None = None) -> None:
        n = len(path)
        self.positions.append(path)
        self.feeding.append(np.full(n, float(feeding)))
        self.spindle.append(np.full(n, self.speed))
        self.surge.append(np.zeros(n) if surge is None else surge)
        self.coolant_on.append(np.full(n, self.coolant))
        self.lines.append(np.full(n, line))
        self.pos = path[-1].copy()

    def wait(self, seconds: float, line: int, surge: np.ndarray | None = None) -> None:
        n = max(1, round(seconds / self.dt))
        self._record(np.repeat(self.pos[None], n, 0), line, False, surge)

    def linear(self, target: np.ndarray, mm_min: float, line: int, feeding: bool) -> None:
        delta = target - self.pos
        done = _profile(float(np.linalg.norm(delta)), mm_min / 60, self.config.accel_mm_s2, self.dt)
        self._record(self.pos + done[:, None] * delta, line, feeding)

    def arc(self, target: np.ndarray, words: dict[str, float], clockwise: bool, line: int, where: str) -> None:
        start = self.pos
        centre = _arc_centre(start, target, words, clockwise, where)
        radius = float(np.linalg.norm(start[:2] - centre))
        sweep = _sweep(start, target, centre, clockwise)
        length = math.hypot(abs(sweep) * radius, target[2] - start[2])
        done = _profile(length, self.feed / 60, self.config.accel_mm_s2, self.dt)
        angle = math.atan2(start[1] - centre[1], start[0] - centre[0]) + sweep * done
        path = np.stack([centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle),
                         start[2] + done * (target[2] - start[2])], 1)
        self._record(path, line, True)

    def execute(self, block: Block, where: str) -> None:
        words = dict(block.params)
        if "F" in words:
            self.feed = words["F"]
        if "S" in words:
            self.speed_word = words["S"]
            if self.speed:
                self.speed = self.speed_word
        target = np.array([words.get(axis, self.pos[i]) for i, axis in enumerate("XYZ")])
        busy = False
        for command in block.commands:
            busy = self._move(command, target, words, block.line, where) or self._auxiliary(command, words,
                                                                                            block.line) or busy
        if not busy:  # set-up codes (G21, G90, G54 ...) only take the controller a moment
            self.wait(BUSY_S.get(block.commands[0], SETUP_S) if block.commands else SETUP_S, block.line)

    def _move(self, command: str, target: np.ndarray, words: dict[str, float], line: int, where: str) -> bool:
        rapid = self.config.rapid_mm_min
        if command == "G0":
            self.linear(target, rapid, line, feeding=False)
        elif command == "G1":
            self.linear(target, self.feed, line, feeding=True)
        elif command in ("G2", "G3"):
            self.arc(target, words, command == "G2", line, where)
        elif command == "G81":  # canned drilling: rapid over the hole, feed down, rapid out
            retract = np.array([target[0], target[1], words.get("R", 2.0)])
            self.linear(np.array([target[0], target[1], self.pos[2]]), rapid, line, False)
            self.linear(retract, rapid, line, False)
            self.linear(target, self.feed, line, True)
            self.linear(retract, rapid, line, False)
        else:
            return False
        return True

    def _auxiliary(self, command: str, words: dict[str, float], line: int) -> bool:
        if command == "G4":
            self.wait(words.get("P", 0.0), line)
        elif command == "M3":
            self.speed = self.speed_word or 1000.0
            n = max(1, round(BUSY_S["M3"] / self.dt))
            self.wait(BUSY_S["M3"], line, surge=np.exp(-np.arange(n) * self.dt / 0.3))
        elif command in ("M5", "M6"):
            self.speed = 0.0
            self.wait(BUSY_S[command], line)
        elif command in ("M8", "M9"):
            self.coolant = float(command == "M8")
            self.wait(BUSY_S[command], line)
        else:
            return False
        return True


def simulate(blocks: list[Block], config: MachineConfig, *, machine: int, seed: int, source: str = "<program>"
             ) -> pd.DataFrame:
    """The sensor recording of one program run: ``time_s``, ``line``, then :data:`CHANNELS`."""
    run = _Run(config)
    for block in blocks:
        run.execute(block, f"{source}:{block.line}")
    dt = run.dt
    pos = np.concatenate(run.positions)
    vel = np.gradient(pos, dt, axis=0) if len(pos) > 1 else np.zeros_like(pos)
    acc = np.gradient(vel, dt, axis=0) if len(pos) > 1 else np.zeros_like(pos)
    speed = np.concatenate(run.spindle)
    cutting = np.concatenate(run.feeding) * (speed > 0) * np.clip(-pos[:, 2], 0, 5)  # depth of cut
    feed_speed = np.linalg.norm(vel, axis=1)
    load = cutting * (0.3 + feed_speed / 10)  # grows with depth and feed: material removal rate
    direction = vel / np.maximum(feed_speed, 1e-6)[:, None]
    axis_current = (0.3 * np.tanh(vel / 0.5) + 0.02 * vel + 0.004 * acc + 0.25 * load[:, None] * direction)
    axis_current[:, 2] += 0.5  # holding the spindle head against gravity
    rpm = speed / 10_000
    spindle_current = np.where(speed > 0, 0.3 + 0.5 * rpm, 0.05) + 1.5 * np.concatenate(run.surge) + 0.6 * load
    rng = np.random.default_rng(seed)
    n = len(pos)
    vibration = (0.2 * rpm + 0.5 * load + 0.0008 * np.linalg.norm(acc, axis=1)
                 + 0.1 * np.concatenate(run.coolant_on)) * (1 + 0.3 * np.abs(rng.normal(size=n))) + 0.05
    signals = np.column_stack([axis_current, spindle_current, vibration])
    # slow thermal drift: smoothed random walk, then the machine's gains and sensor noise
    walk = np.cumsum(rng.normal(size=(n, len(CHANNELS))), 0)
    walk -= walk.mean(0)
    drift = config.drift * walk / max(np.abs(walk).max(), 1e-9)
    gains, lead = machine_traits(config, machine)
    signals = (signals + drift) * gains
    signals += config.noise * rng.normal(size=signals.shape) * np.array([0.5, 0.5, 0.5, 0.5, 0.3])
    frame = pd.DataFrame(signals.astype(np.float32), columns=list(CHANNELS))
    lines = np.concatenate(run.lines)
    frame.insert(0, LINE, np.concatenate([lines[lead:], np.repeat(lines[-1:], min(lead, n))]))
    frame.insert(0, TIME, np.round(np.arange(n) * dt, 4))
    return frame
