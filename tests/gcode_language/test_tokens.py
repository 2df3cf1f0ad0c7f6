"""Tokens, both vocabularies, bucketing, and the decomposition round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweeplab.gcode_language.parser import parse_program
from sweeplab.gcode_language.tokens import (
    COMMAND,
    MAX_BUCKET,
    NUMERIC,
    PARAMETER,
    SPECIAL,
    SPECIALS,
    UNK,
    ProgramTokens,
    TokenSpec,
    Vocabulary,
    VocabularyError,
    key_of,
    name_of,
    program_tokens,
)
from sweeplab.pipelines.cnc.programs import generate_program
from sweeplab.pipelines.gcode.model import Composer

UNITS = {"X": 2.0, "Y": 2.0, "Z": 0.5, "I": 1.0, "J": 1.0, "K": 1.0, "R": 0.5, "F": 25.0, "S": 200.0,
         "T": 1.0, "P": 0.1, "Q": 0.1}
V1, V2 = TokenSpec("v1", 0.01), TokenSpec("v2", units=UNITS)


def corpus(spec: TokenSpec, seeds=range(12)) -> list[ProgramTokens]:
    return [program_tokens(parse_program(generate_program(np.random.default_rng(seed), f"p{seed}")), spec)
            for seed in seeds]


def test_values_become_tokens_at_full_precision_or_two_digits():
    assert V1.value_token("X", 16.5) == ("NUM_X_1650", False)
    assert V1.value_token("Z", -0.25) == ("NUM_Z_-25", False)
    assert V2.value_token("X", 16.5) == ("NUM_X_8", False)  # 2 mm buckets: 16-18 mm
    assert V2.value_token("X", 17.99) == ("NUM_X_8", False)
    assert V2.value_token("Z", -0.5) == ("NUM_Z_-1", False)  # floor, also below zero
    assert V2.value_token("Z", -0.3) == ("NUM_Z_-1", False)
    assert V2.value_token("F", 800) == ("NUM_F_32", False)
    assert V2.value_token("X", 250.0) == ("NUM_X_99", True)  # beyond two digits: clipped, and said so
    assert V2.value_token("X", -250.0) == (f"NUM_X_-{MAX_BUCKET}", True)


def test_a_line_is_its_commands_then_letter_value_pairs_and_modal_lines_write_no_command():
    program = parse_program(["G1 X16.5 Y3 F800", "X20.2", "X-1 G0 (a parameter before its command)", "Y999"])
    tokens = program_tokens(program, V2)
    assert tokens.by_line() == {1: ["G1", "X", "NUM_X_8", "Y", "NUM_Y_1", "F", "NUM_F_32"],
                                2: ["X", "NUM_X_10"],  # the machine runs G1 (below); the program does not write it
                                3: ["G0", "X", "NUM_X_-1"],
                                4: ["Y", "NUM_Y_99"]}
    assert program.blocks[1].commands == ("G1",) and program.blocks[1].modal
    assert tokens.clipped == 1, "Y999 is beyond two digits of 2 mm"
    assert program_tokens(program, V1).by_line()[1] == ["G1", "X", "NUM_X_1650", "Y", "NUM_Y_300", "F", "NUM_F_80000"]


def test_token_keys_name_every_kind_of_token():
    for token in ["G1", "G38.2", "M3", "M30", "X", "F", "NUM_X_-99", "NUM_S_60", "NUM_Z_123456"]:
        assert name_of(key_of(token)) == token
    with pytest.raises(VocabularyError, match="'<bos>' is not a token"):
        key_of("<bos>")


def test_missing_or_bad_bucket_width_is_named():
    with pytest.raises(ValueError, match=r"units.*\['Q'\]"):
        TokenSpec("v2", units={k: v for k, v in UNITS.items() if k != "Q"})
    with pytest.raises(ValueError, match="positive"):
        TokenSpec("v2", units=UNITS | {"F": 0})
    with pytest.raises(ValueError, match="v1 or v2"):
        TokenSpec("v3")


def test_vocabulary_sizes_counts_and_unknown_tokens():
    programs = corpus(V2)
    vocab = Vocabulary.build(programs, V2)
    flat = [t for p in programs for t in p.names()]
    assert vocab.tokens[: len(SPECIALS)] == list(SPECIALS)
    assert len(vocab) == len(SPECIALS) + len(set(flat))
    assert sum(vocab.counts.values()) == len(flat)
    assert vocab.counts["G1"] == flat.count("G1")
    ids, unknown = vocab.encode(program_tokens(parse_program(["G1 X16.5", "M999"]), V2))
    assert [vocab.tokens[i] for i in ids] == ["G1", "X", "NUM_X_8", "<unk>"] and unknown == 1
    ids, unknown = vocab.encode(program_tokens(parse_program(["G1 X16.5", "M999"]), V1))
    assert ids[0] == vocab.index["G1"] and ids[2] == UNK and ids[3] == UNK and unknown == 2  # v2 ids, v1 tokens
    # full precision makes a far larger vocabulary from the same programs
    v1 = Vocabulary.build(corpus(V1), V1)
    assert len(v1) > 3 * len(vocab)
    assert Vocabulary.from_dict(vocab.to_dict()).tokens == vocab.tokens
    with pytest.raises(VocabularyError, match=r"missing key\(s\) \['tokens'\]"):
        Vocabulary.from_dict({"version": "v2", "units": UNITS}, where="vocab.json")


def test_every_v2_token_decomposes_and_composes_back_exactly():
    vocab = Vocabulary.build(corpus(V2), V2)
    kinds = set()
    for token in vocab.tokens:
        parts = vocab.decompose(token)
        kinds.add(parts[0])
        assert vocab.compose(*parts) == token
    assert kinds == {SPECIAL, COMMAND, PARAMETER, NUMERIC}
    table = vocab.part_tables()
    assert vocab.decompose("G1")[2:] == (-1, -1) and vocab.decompose("X")[1] == -1
    assert (table[table[:, 0] == NUMERIC][:, 1:] >= [-1, 0, 0]).all()


def test_heads_that_predict_a_tokens_parts_compose_to_that_token():
    """The multi-head model's composition gives back every token from one-hot part logits."""
    vocab = Vocabulary.build(corpus(V2), V2)
    tables = vocab.compose_tables()
    composer = Composer(torch.as_tensor(vocab.part_tables()),
                        *(torch.as_tensor(tables[k]) for k in ("symbol", "parameter", "numeric")))
    parts = vocab.part_tables()
    sizes = {"type": 4, "symbol": len(vocab.symbols), "parameter": len(vocab.letters()), "value": 2 * MAX_BUCKET + 1}
    logits = {}
    for i, (name, size) in enumerate(sizes.items()):
        column = torch.as_tensor(parts[:, i]).clamp(min=0)
        logits[name] = torch.nn.functional.one_hot(column, size).float()[None]
    assert composer.predict(logits)[0].tolist() == list(range(len(vocab)))
    # a (letter, bucket) never seen in training composes to <unk>
    logits["type"] = torch.nn.functional.one_hot(torch.tensor([[NUMERIC]]), 4).float()
    logits["parameter"] = torch.nn.functional.one_hot(torch.tensor([[0]]), sizes["parameter"]).float()
    logits["value"] = torch.nn.functional.one_hot(torch.tensor([[0]]), sizes["value"]).float()  # X = -99
    logits["symbol"] = logits["symbol"][:, :1]
    assert composer.predict(logits).item() == UNK


def test_values_beyond_a_tokens_range_are_clipped_with_their_sign_and_counted():
    program = parse_program(["G1 X900000000 Y-900000000 Z1", "G1 X-0.5"])
    tokens = program_tokens(program, V2)
    assert tokens.by_line()[1] == ["G1", "X", "NUM_X_99", "Y", "NUM_Y_-99", "Z", "NUM_Z_2"] and tokens.clipped == 2
    fine = TokenSpec("v1", 1e-6)  # 9e14 steps: beyond the 40 bits a v1 token number has
    tokens = program_tokens(program, fine)
    assert tokens.by_line()[1][2] == f"NUM_X_{2**40 - 1}" and tokens.by_line()[1][4] == f"NUM_Y_-{2**40 - 1}"
    assert tokens.clipped == 2


def test_a_command_keeps_every_decimal_in_its_token():
    tokens = program_tokens(parse_program(["M1000.001", "M1000", "G38.2 Z-1 F10"]), V2)
    assert [names[0] for names in tokens.by_line().values()] == ["M1000.001", "M1000", "G38.2"]
    assert len(set(tokens.key[[0, 1]].tolist())) == 2


@pytest.mark.parametrize("text", ["", "%", "(only a comment)", "N10", "%\n\n;\n%"])
def test_a_program_with_nothing_to_execute_gives_no_tokens(text):
    program = parse_program(text)
    assert len(program.lines) == 0 and program.blocks == []
    tokens = program_tokens(program, V2)
    assert len(tokens.key) == 0 and tokens.clipped == 0
    assert len(Vocabulary.build([tokens], V2)) == len(SPECIALS)


def vocabulary_file(**change):
    data = Vocabulary.build(corpus(V2, seeds=[0]), V2).to_dict()
    return {**data, **({"counts": {}} if "tokens" in change else {}), **change}


@pytest.mark.parametrize(("change", "message"), [
    ({"tokens": None}, r"tokens: expected a list of strings, got NoneType"),
    ({"counts": "0"}, r"counts: expected a mapping of tokens to non-negative integers"),
    ({"counts": {"G1": -1}}, r"counts: expected a mapping of tokens to non-negative integers"),
    ({"counts": {"G99": 1}}, r"counts: token\(s\) \['G99'\] not in tokens"),
    ({"tokens": [*SPECIALS, "NUM_"]}, r"'NUM_' is not a token"),
    ({"tokens": [*SPECIALS, "0INF"]}, r"'0INF' is not a token"),
    ({"tokens": [*SPECIALS, "000"]}, r"'000' is not a token"),
    ({"tokens": [*SPECIALS, "G01"]}, r"'G01' is not written as tokens are \(expected 'G1'\)"),
    ({"tokens": [*SPECIALS, "NUM_X_150"]}, r"'NUM_X_150' is outside the v2 buckets"),
    ({"tokens": [*SPECIALS, "G1", "G1"]}, r"lists a token twice"),
    ({"tokens": ["G1"]}, r"starts with the special tokens"),
    ({"tokens": [*SPECIALS, "<pad>"]}, r"lists a token twice"),
    ({"version": "v3"}, r"vocabulary version must be v1 or v2, got 'v3'"),
    ({"resolution": "0.01"}, r"resolution: expected a positive number, got '0.01'"),
    ({"units": {"X": 0}}, r"units: expected a mapping of letters to positive widths"),
    ({"units": {"X": 1.0}}, r"no bucket width for parameter letter"),
])
def test_a_vocabulary_file_is_checked_like_any_input(change, message):
    with pytest.raises(VocabularyError, match=rf"^vocab.json: .*{message}"):
        Vocabulary.from_dict(vocabulary_file(**change), where="vocab.json")


def test_a_vocabulary_file_that_is_not_a_mapping_is_named():
    with pytest.raises(VocabularyError, match=r"^vocab.json: expected a mapping with version, tokens and counts"):
        Vocabulary.from_dict(["G1"], where="vocab.json")
    with pytest.raises(VocabularyError, match=r"^vocab.json: missing key\(s\) \['tokens'\]"):
        Vocabulary.from_dict({"version": "v2"}, where="vocab.json")
