"""A vocabulary trained on the pre-training text (deberta_core.tokenization.train_spm_tokenizer and
deberta-pretrain --train-tokenizer): deberta-v3's layout and special ids, text round trips, byte
fallback, the reference tokenizer reading it alike, and pre-train -> export -> fine-tune with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sentencepiece import sentencepiece_model_pb2 as pb2

from deberta_core.pretrain.data import read_lines
from deberta_core.tokenization import DebertaV2Tokenizer, DebertaV2TokenizerFast, train_spm_tokenizer
from tests.cases import data_path, reference_transformers
from tests.pretraining.test_cli import TEXT, pretrain_argv, run_pretrain
from tests.train.conftest import TOKENIZER, metrics, run_main, tiny_config, train_argv, weights

VOCAB = 1000
HELD_OUT_LINES = read_lines([data_path("datasets", "wikitext-2-valid-test", "test.txt")])[:300]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vocab")
    train_spm_tokenizer(read_lines([TEXT]), directory, VOCAB)
    return directory


def spec(path):
    proto = pb2.ModelProto()
    proto.ParseFromString(path.read_bytes())
    return proto


def test_the_folder_is_laid_out_as_deberta_v3s(trained):
    assert {p.name for p in trained.iterdir()} == {p.name for p in TOKENIZER.iterdir()} - {"config.json",
                                                                                            "PROVENANCE.md"}
    for cls in (DebertaV2Tokenizer, DebertaV2TokenizerFast):
        tok, real = cls.from_pretrained(trained), cls.from_pretrained(TOKENIZER)
        assert len(tok) == VOCAB and tok.mask_token_id == VOCAB - 1  # [MASK] after the pieces, as 128000
        for role in ("pad", "cls", "sep", "unk", "mask", "bos", "eos"):
            assert getattr(tok, f"{role}_token") == getattr(real, f"{role}_token")
        for role in ("pad", "cls", "sep", "unk"):  # the same ids as deberta-v3: [PAD]=0 [CLS]=1 [SEP]=2 [UNK]=3
            assert getattr(tok, f"{role}_token_id") == getattr(real, f"{role}_token_id")
        assert sorted(tok.all_special_ids) == [0, 1, 2, 3, VOCAB - 1]
    assert json.loads((trained / "added_tokens.json").read_text()) == {"[MASK]": VOCAB - 1}
    ours, theirs = spec(trained / "spm.model"), spec(TOKENIZER / "spm.model")
    assert len(ours.pieces) == VOCAB - 1
    for field in ("model_type", "byte_fallback", "pad_id", "bos_id", "eos_id", "unk_id", "pad_piece", "bos_piece",
                  "eos_piece", "unk_piece", "split_digits"):
        assert getattr(ours.trainer_spec, field) == getattr(theirs.trainer_spec, field), field
    assert ours.normalizer_spec.name == theirs.normalizer_spec.name == "nmt_nfkc"


def test_held_out_text_round_trips_and_unseen_characters_fall_back_to_bytes(trained):
    tok = DebertaV2TokenizerFast.from_pretrained(trained)
    batch = tok(HELD_OUT_LINES, add_special_tokens=False)["input_ids"]
    normalized = [tok.sp.normalize(line).replace("\u2581", " ").strip() for line in HELD_OUT_LINES]
    assert [tok.decode(ids) for ids in batch] == normalized
    assert sum(line == norm for line, norm in zip(HELD_OUT_LINES, normalized)) > 250  # mostly the text itself
    assert all(tok.unk_token_id not in ids for ids in batch)
    text = "Snow ☃ and 雪 fall."  # characters the training text never has: byte pieces, not [UNK]
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and tok.unk_token_id not in ids
    assert any(tok.convert_ids_to_tokens(i).startswith("<0x") for i in ids)
    assert tok.decode(ids, skip_special_tokens=True) == text
    pair = tok("The film", "was good .")
    sep = pair["input_ids"].index(tok.sep_token_id)
    assert pair["token_type_ids"] == [0] * (sep + 1) + [1] * (len(pair["input_ids"]) - sep - 1)
    slow = DebertaV2Tokenizer.from_pretrained(trained)
    assert slow(HELD_OUT_LINES[:50])["input_ids"] == tok(HELD_OUT_LINES[:50])["input_ids"]


def test_the_reference_tokenizer_reads_it_alike(trained):
    transformers = reference_transformers()
    reference = transformers.DebertaV2Tokenizer.from_pretrained(str(trained))
    ours = DebertaV2Tokenizer.from_pretrained(trained)
    assert len(reference) == VOCAB and reference.mask_token_id == VOCAB - 1
    texts = [*HELD_OUT_LINES[:50], "A [MASK] film ."]
    assert reference(texts)["input_ids"] == ours(texts)["input_ids"]


def test_training_is_deterministic_and_sizes_are_checked(trained, tmp_path):
    train_spm_tokenizer(read_lines([TEXT]), tmp_path / "again", VOCAB)  # what torchrun's processes rely on
    assert (tmp_path / "again" / "spm.model").read_bytes() == (trained / "spm.model").read_bytes()
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 301"):
        train_spm_tokenizer(["some text"], tmp_path / "small", 100)
    with pytest.raises(ValueError, match="Vocabulary size too high"):
        train_spm_tokenizer(["a few words of text", "and a second line"], tmp_path / "big", 5000)
    with pytest.raises(ValueError, match="no text"):
        train_spm_tokenizer(["", "  "], tmp_path / "blank", VOCAB)


# ---------------------------------------------------------------------------- deberta-pretrain
def test_pretrain_with_a_trained_vocabulary_then_fine_tune(tmp_path):
    output = tmp_path / "rtd"
    argv = pretrain_argv("rtd", "pt", output, tiny_config(tmp_path), tokenizer=None, train_tokenizer=VOCAB,
                         max_steps=2, eval_every=2)
    assert run_pretrain(argv) == 0
    tok = DebertaV2TokenizerFast.from_pretrained(output / "tokenizer")
    assert len(tok) == VOCAB
    report = metrics(output)
    assert report["data"]["vocab_size"] == VOCAB and report["data"]["tokenizer_trained"]["vocab_size"] == VOCAB
    assert report["baselines"]["unigram"]["mlm_loss"] < np.log(VOCAB)
    for part in ("best/generator", "last/discriminator", "encoder"):  # the config follows the vocabulary
        assert json.loads((output / part / "config.json").read_text())["vocab_size"] == VOCAB
    assert weights(output / "encoder")["embeddings.word_embeddings.weight"].shape[0] == VOCAB
    for part in ("best", "last", "encoder"):
        assert (output / part / "spm.model").read_bytes() == (output / "tokenizer" / "spm.model").read_bytes()
    # the exported encoder and its tokenizer fine-tune as any checkpoint
    tuned = tmp_path / "sst2"
    assert run_main(train_argv("classification", "pt", None, tuned, model=str(output / "encoder"), tokenizer=None,
                               max_steps=2)) == 0
    import torch

    import deberta_torch

    model = deberta_torch.DebertaV2ForSequenceClassification.from_pretrained(tuned / "last").eval()
    batch = DebertaV2TokenizerFast.from_pretrained(tuned / "last")(["a gripping film", "dull ."], padding=True,
                                                                    return_tensors="pt")
    with torch.no_grad():
        assert model(**batch).logits.shape == (2, 2)
    # resume reads the vocabulary already trained (never retrains it)
    split = tmp_path / "split"
    stamp = None
    for options in (dict(stop_after=1), dict(resume=True)):
        assert run_pretrain(pretrain_argv("rtd", "pt", split, tiny_config(tmp_path), tokenizer=None,
                                          train_tokenizer=VOCAB, max_steps=2, eval_every=1, **options)) == 0
        stamp = stamp or (split / "tokenizer" / "spm.model").stat().st_mtime_ns
    assert (split / "tokenizer" / "spm.model").stat().st_mtime_ns == stamp
    assert [e["step"] for e in metrics(split)["evals"]] == [1, 2]


@pytest.mark.parametrize("change, message", [
    (dict(), "--train-tokenizer makes the tokenizer (OUTPUT/tokenizer); drop --tokenizer"),
    (dict(tokenizer=None, config=None, model="MODEL"), "--train-tokenizer is for pre-training from --config"),
    (dict(tokenizer=None, train_tokenizer=50), "--train-tokenizer must be >= 301"),
])
def test_train_tokenizer_arguments_are_checked(tmp_path, capsys, change, message):
    model = tmp_path / "model"
    model.mkdir()
    (model / "rtd_pretraining.json").write_text("{}")
    change = {k: (str(model) if v == "MODEL" else v) for k, v in change.items()}
    argv = pretrain_argv("rtd", "pt", tmp_path / "out", **{"config": tiny_config(tmp_path), "train_tokenizer": VOCAB,
                                                             **change})
    assert run_pretrain(argv) == 2
    assert message in capsys.readouterr().err
