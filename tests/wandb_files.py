"""Reads back the runs W&B writes offline (``offline-run-*/run-*.wandb``), without W&B's
service: the file is a log of protobuf records in 32 KiB blocks (LevelDB's log format after a
7-byte header), each chunk behind a 7-byte header (crc32, length, type)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2  # noqa: PLC0415

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B run file"
    out, pending, at = [], b"", HEADER
    while at + HEADER <= len(data):
        left_in_block = BLOCK - at % BLOCK
        if left_in_block < HEADER:  # the rest of a block too small for a header is padding
            at += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[at:at + HEADER])
        chunk = data[at + HEADER:at + HEADER + length]
        at += HEADER + length
        if kind in (FULL, FIRST):
            pending = chunk
        elif kind in (MIDDLE, LAST):
            pending += chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def read_run(folder: Path) -> dict[str, Any]:
    """An offline run: its name, group, config, history rows by step, and final summary."""
    (path,) = folder.glob("run-*.wandb")
    run: dict[str, Any] = {"config": {}, "history": {}, "summary": {}}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(name=record.run.display_name, group=record.run.run_group)
            run["config"].update({c.key: json.loads(c.value_json) for c in record.run.config.update})
        elif kind == "config":
            run["config"].update({c.key: json.loads(c.value_json) for c in record.config.update})
        elif kind == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            run["history"][int(items["_step"])] = items
        elif kind == "summary":
            run["summary"].update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                   for item in record.summary.update})
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    run["config"] = {k: (v.get("value") if isinstance(v, dict) and "value" in v else v)
                     for k, v in run["config"].items() if not k.startswith("_")}
    return run
