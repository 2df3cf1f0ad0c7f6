"""Synthetic programs and recordings, reading real-format folders, vocabularies, windows,
oversampling and augmentation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

from sweeplab.datasets.folder import FolderDataset
from sweeplab.gcode_language.parser import parse_program
from sweeplab.gcode_language.tokens import BOS, EOS, PAD, SEP, Vocabulary
from sweeplab.pipelines.cnc import data
from sweeplab.pipelines.cnc.machine import CHANNELS, LINE, TIME, MachineConfig, simulate
from sweeplab.pipelines.gcode.augment import AugmentConfig, augment_sensors, oversample

UNITS = {"X": 2.0, "Y": 2.0, "Z": 0.5, "I": 1.0, "J": 1.0, "K": 1.0, "R": 0.5, "F": 25.0, "S": 200.0,
         "T": 1.0, "P": 0.1, "Q": 0.1}
PARAMS = {"on_error": "raise", "max_blocks": 1_000_000, "split": {"val": 0.2, "test": 0.2, "seed": 0},
          "vocabulary": {"resolution": 0.01, "units": UNITS},
          "windows": {"length": 32, "stride": 32, "max_tokens": 40, "rare_share": 0.1}}


def generate(n_programs: int, seed: int) -> tuple[dict, dict]:
    """Programs and sensor logs by recording name, from the generator's folder layout."""
    files = data.generate_recordings({"n_programs": n_programs, "seed": seed})
    assert set(files) == {f"{kind}/program_{i:03d}.{ext}" for i in range(n_programs)
                          for kind, ext in (("programs", "nc"), ("sensors", "csv"))}
    return ({k.split("/")[1][:-3]: v for k, v in files.items() if k.startswith("programs/")},
            {k.split("/")[1][:-4]: v for k, v in files.items() if k.startswith("sensors/")})


@pytest.fixture(scope="module")
def generated():
    return generate(10, 3)


def as_partitions(files: dict) -> dict:
    """What PartitionedDataset.load gives a node: name -> a function that loads it."""
    return {name: (lambda v=value: v.copy() if isinstance(v, pd.DataFrame) else v) for name, value in files.items()}


@pytest.fixture(scope="module")
def recordings(generated):
    programs, sensors = generated
    return data.load_recordings(as_partitions(programs), as_partitions(sensors), PARAMS)


def test_generated_programs_parse_and_rare_commands_are_rare():
    programs, _ = generate(30, 0)
    commands = Counter()
    for name, text in programs.items():
        blocks = parse_program(text.splitlines(), source=f"{name}.nc").blocks
        commands.update(c for b in blocks for c in b.commands)
    total = sum(commands.values())
    assert {"G0", "G1", "G2", "G3", "M3", "M5"} <= set(commands)
    assert commands["G1"] / total > 0.3  # motion dominates ...
    for rare in ("G21", "G54", "M30", "G4"):  # ... set-up and special commands are rare
        assert 0 < commands[rare] / total < 0.02, rare


def test_the_simulator_aligns_samples_with_lines_and_responds_to_the_program():
    config = MachineConfig(noise=0.0, drift=0.0, max_line_lead_s=0.0)
    blocks = parse_program(["G21 G90", "S6000 M3", "G0 X0 Y0 Z1", "G1 Z-2 F300", "G1 X40 F600",
                            "G2 X40 Y0 I-10 J0", "G0 Z5", "M5"]).blocks
    frame = simulate(blocks, config, machine=0, seed=0)
    assert list(frame.columns) == [TIME, LINE, *CHANNELS]
    assert frame[LINE].is_monotonic_increasing and set(frame[LINE]) == {b.line for b in blocks}
    by_line = frame.groupby(LINE)
    assert by_line.size()[5] == pytest.approx(40 / 10 * 20, abs=8)  # 40 mm at 10 mm/s, 20 Hz
    assert by_line.size()[6] > by_line.size()[5]  # the full circle (63 mm) takes longer
    spindle = by_line["current_spindle"].mean()
    assert spindle[5] > spindle[3] > spindle[8]  # cutting > spindle on, not cutting > spindle off
    x = by_line["current_x"]
    assert x.median()[5] > 0.2 and abs(x.median()[4]) < 0.05  # the X move drives X, the plunge does not
    same = simulate(blocks, MachineConfig(), machine=1, seed=4)
    assert same.equals(simulate(blocks, MachineConfig(), machine=1, seed=4))


def test_recordings_are_split_by_program(recordings):
    splits = Counter(r.split for r in recordings)
    assert splits == {"train": 6, "val": 2, "test": 2}
    assert all(len(r.blocks) == len(r.signals) for r in recordings)


def test_the_generated_folder_loads_as_the_same_recordings(tmp_path, recordings):
    folder = FolderDataset(filepath=str(tmp_path / "recordings"))
    folder.save(data.generate_recordings({"n_programs": 10, "seed": 3}))
    loaded = data.load_generated_recordings(folder.load(), PARAMS)
    assert [r.name for r in loaded] == [r.name for r in recordings]
    for a, b in zip(loaded, recordings, strict=True):
        assert a.split == b.split and np.array_equal(a.blocks, b.blocks)
        np.testing.assert_allclose(a.signals, b.signals, rtol=1e-6)


def test_bad_sensor_logs_name_the_file_column_and_row(generated):
    programs, sensors = generated
    name = sorted(programs)[0]
    broken = dict(sensors) | {name: sensors[name].drop(columns="vibration")}
    with pytest.raises(ValueError, match=rf"{name}\.csv: missing column\(s\) \['vibration'\]"):
        data.load_recordings(as_partitions(programs), as_partitions(broken), PARAMS)
    frame = sensors[name].copy()
    frame.loc[5, "current_y"] = np.nan
    with pytest.raises(ValueError, match=rf"{name}\.csv: non-finite value in column 'current_y' at data row 6"):
        data.load_recordings(as_partitions(programs), as_partitions(dict(sensors) | {name: frame}), PARAMS)
    frame = sensors[name].copy()
    frame.loc[3, LINE] = 1  # line 1 is "%": nothing executes there
    with pytest.raises(ValueError, match=rf"{name}\.csv: data row 4 names program line 1"):
        data.load_recordings(as_partitions(programs), as_partitions(dict(sensors) | {name: frame}), PARAMS)
    with pytest.raises(ValueError, match=rf"sensor logs without a program \['{name}'\]"):
        data.load_recordings(as_partitions({k: v for k, v in programs.items() if k != name}),
                             as_partitions(sensors), PARAMS)
    bad = dict(programs) | {name: programs[name].replace("G54", "G54 X1..2", 1)}
    with pytest.raises(ValueError, match=rf"{name}\.nc:\d+: malformed word"):
        data.load_recordings(as_partitions(bad), as_partitions(sensors), PARAMS)


def test_a_skipped_line_takes_its_sensor_samples_with_it(generated, recordings):
    """With on_error: skip the line is dropped, and so are the samples its log gives it; the
    rest of the recording stays aligned with the blocks that remain."""
    programs, sensors = generated
    name = sorted(programs)[0]
    lines = programs[name].splitlines()
    number = next(i for i, text in enumerate(lines, 1) if " G1 " in text and i > 10)
    lines[number - 1] = lines[number - 1].replace(" G1 ", " G1 X1..2 ")
    bad = dict(programs) | {name: "\n".join(lines)}
    with pytest.raises(ValueError, match=rf"^{name}\.nc:{number}: malformed word"):
        data.load_recordings(as_partitions(bad), as_partitions(sensors), PARAMS)
    skipping = data.load_recordings(as_partitions(bad), as_partitions(sensors), PARAMS | {"on_error": "skip"})
    before, after = recordings[0], skipping[0]
    assert after.program.skipped[0][0] == number
    kept = sensors[name][LINE].to_numpy() != number
    assert 0 < (~kept).sum() and len(after.signals) == kept.sum()
    np.testing.assert_array_equal(after.signals, before.signals[kept])
    np.testing.assert_array_equal(after.program.lines[after.blocks], sensors[name][LINE].to_numpy()[kept])
    lines = data.build_vocabularies(skipping, PARAMS["vocabulary"])[2]["lines"][after.split]
    assert lines["skipped"] == 1 and lines["skipped_why"][0].startswith(f"{name}.nc:{number}: malformed word")


LOOPING = """%
G21 G90
#<_depth> = 1.0
#<step> = 0.5
S8000 M3
G0 X0 Y0 Z2
o<ring> sub
  G1 Z[-#1] F200
  G2 X0 Y0 I10 J0 F600
  G0 Z2
o<ring> endsub
#1 = #<step>
o1 while [#1 LE #<_depth>]
  o<ring> call [#1]
  #1 = [#1 + #<step>]
o1 endwhile
o<probe> call
M5
%"""


def test_a_looping_program_records_and_windows_block_by_block(generated):
    """The machine runs the executed blocks, so its log goes back to the loop's lines; each
    sample finds its block, and windows cover blocks in running order."""
    programs, sensors = generated
    blocks = parse_program(LOOPING, source="looping.nc").blocks
    assert [b.line for b in blocks] == [2, 5, 6, 8, 9, 10, 8, 9, 10, 18]
    log = simulate(blocks, MachineConfig(), machine=0, seed=0)
    params = PARAMS | {"windows": PARAMS["windows"] | {"length": 16, "stride": 16}}
    recordings = data.load_recordings(as_partitions(programs | {"looping": LOOPING}),
                                      as_partitions(sensors | {"looping": log}), params)
    looping = next(r for r in recordings if r.name == "looping")
    np.testing.assert_array_equal(looping.program.lines[looping.blocks], log[LINE].to_numpy())
    assert set(np.diff(looping.blocks).tolist()) == {0, 1}, "every block in turn, none skipped or revisited"
    _, v2, report = data.build_vocabularies(recordings, params["vocabulary"])
    split = looping.split
    lines = report["lines"][split]
    assert lines["executed_blocks"]["expanded"] == 6 and lines["control_lines"] >= 9
    assert lines["not_modelled"] == {"external subroutine o<probe> (call skipped)": 1}
    plain_blocks = sum(len(r.program.lines) for r in recordings if r.name != "looping")
    assert sum(report["lines"][s]["executed_blocks"]["as_written"] for s in data.SPLITS) == plain_blocks + 4
    assert sum(report["lines"][s]["skipped"] for s in data.SPLITS) == 0
    stream, _ = data.build_windows(recordings, v2, params["windows"])
    back = log.copy()
    back.loc[len(back) - 1, LINE] = 9  # the arc's line after the loop is over: it does not run again
    with pytest.raises(ValueError, match=rf"looping\.csv: data row {len(back)} names program line 9, which does not "
                                         "run again after the block before it"):
        data.load_recordings(as_partitions(programs | {"looping": LOOPING}),
                             as_partitions(sensors | {"looping": back}), params)


def test_vocabularies_report_sizes_coverage_and_unknowns(recordings):
    v1, v2, report = data.build_vocabularies(recordings, PARAMS["vocabulary"])
    assert report["v1"]["size"] == len(v1["tokens"]) > report["v2"]["size"] == len(v2["tokens"])
    assert report["v2"]["coverage"]["train"] == 1.0 and report["v2"]["unknown_tokens"]["train"] == 0
    for version in ("v1", "v2"):
        for split in ("val", "test"):
            assert 0 < report[version]["coverage"][split] <= 1
    # full precision leaves more of the unseen programs' tokens unknown
    assert report["v1"]["unknown_tokens"]["val"] > report["v2"]["unknown_tokens"]["val"]
    assert all(v2["counts"][t] > 0 for t in v2["tokens"][5:])


def test_windows_pair_standardised_sensors_with_the_lines_they_cover(recordings):
    _, v2, _ = data.build_vocabularies(recordings, PARAMS["vocabulary"])
    stream, report = data.build_windows(recordings, v2, PARAMS["windows"])
    arrays = dict((key, rows) for key, _, rows in stream.blocks())
    x, tokens = arrays["x_train"], arrays["tokens_train"]
    assert x.shape[1:] == (len(CHANNELS), 32) and tokens.shape == (len(x), 40)
    assert np.abs(x.mean((0, 2))).max() < 0.2 and np.abs(x.std((0, 2)) - 1).max() < 0.2
    assert (tokens[:, 0] == BOS).all()
    lengths = (tokens != PAD).sum(1)
    assert (tokens[np.arange(len(tokens)), lengths - 1] == EOS).all()
    assert (tokens == SEP).any()  # windows spanning two lines separate them
    vocab = Vocabulary.from_dict(v2)
    rare = set(report["rare_commands"])
    assert {"M3", "M5"} <= rare and not rare & {"G0", "G1"}  # all but the workhorse motions
    flagged = [any(vocab.tokens[t] in rare for t in row) for row in tokens]
    assert arrays["rare_train"].tolist() == flagged and any(flagged)
    assert report["train"]["windows"] == len(x) and report["train"]["command_share"] < 0.25


def test_oversampling_repeats_rare_windows_k_times():
    rows = {"x": np.arange(10)[:, None], "tokens": np.arange(10) * 10}
    rare = np.zeros(10, bool)
    rare[[2, 7]] = True
    out = oversample(rows, rare, 3)
    assert len(out["x"]) == 10 + 2 * 2
    counts = Counter(out["x"][:, 0].tolist())
    assert counts[2] == counts[7] == 3 and all(counts[i] == 1 for i in range(10) if i not in (2, 7))
    assert (out["tokens"] == out["x"][:, 0] * 10).all()  # rows stay paired
    assert len(oversample(rows, rare, 1)["x"]) == 10


def test_augmentation_is_seeded_and_bounded():
    cfg = AugmentConfig()
    x = torch.randn(64, 5, 32)
    torch.manual_seed(0)
    a = augment_sensors(x, cfg)
    torch.manual_seed(0)
    assert torch.equal(a, augment_sensors(x, cfg))
    torch.manual_seed(1)
    assert not torch.equal(a, augment_sensors(x, cfg))
    ramp = torch.arange(32.0).repeat(200, 1, 1)
    out = augment_sensors(ramp, AugmentConfig(noise=0.0, scale_low=1.0, scale_high=1.0))
    shifts = (out[:, 0, 16] - ramp[:, 0, 16])
    assert set(shifts.tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}
    scaled = augment_sensors(torch.ones(500, 1, 8), AugmentConfig(noise=0.0, max_shift=0))
    assert 0.95 <= scaled.min() and scaled.max() <= 1.05 and scaled.std() > 0.01
    noisy = augment_sensors(torch.zeros(100, 5, 32), AugmentConfig(max_shift=0))
    assert noisy.std().item() == pytest.approx(0.02, rel=0.1)
