"""Bad command lines and bad data: one clear `deberta-train: error: ...` line and exit status 2."""

import json

import pytest

from tests.train.conftest import run_main, tiny_config, train_argv


@pytest.fixture
def config(tmp_path):
    return tiny_config(tmp_path)


def error_of(argv, capsys) -> str:
    assert run_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("deberta-train: error: "), err
    return err[-1]


@pytest.mark.parametrize("change, message", [
    (dict(config=None), "give --model DIR (fine-tune a checkpoint) or --config JSON"),
    (dict(tokenizer=None), "--config needs --tokenizer DIR"),
    (dict(config=None, model="/no/such/dir"), "--model /no/such/dir: not a directory"),
    (dict(train="/no/such/file.tsv"), "--train /no/such/file.tsv: no such file"),
    (dict(batch_size=0), "--batch-size must be >= 1, got 0"),
    (dict(batch_size=10, grad_accum=4), "--batch-size 10 must be a multiple of --grad-accum 4"),
    (dict(lr=0), "--lr must be > 0"),
    (dict(warmup_ratio=2), "--warmup-ratio must be in [0, 1]"),
    (dict(text_column="sentence", task="ner"), "--text-column is only for --task classification"),
    (dict(devices=2), "--devices is for --framework tf"),
    (dict(resume=True), "--resume: nothing to resume in"),
    (dict(time_budget=-1), "--time-budget must be > 0 minutes"),
])
def test_bad_arguments(tmp_path, config, capsys, change, message):
    task = change.pop("task", "classification")
    argv = train_argv(task, "pt", change.pop("config", config), tmp_path / "out", **change)  # None: flag left out
    assert message in error_of(argv, capsys)


def test_qa_doc_stride_must_be_below_max_length(tmp_path, config, capsys):
    argv = train_argv("qa", "pt", config, tmp_path / "out", max_length=64, doc_stride=64)
    assert "--doc-stride must be in [0, --max-length) = [0, 64), got 64" in error_of(argv, capsys)


def test_epochs_and_max_steps_exclude_each_other(tmp_path, config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(train_argv("classification", "pt", config, tmp_path / "out", epochs=1))
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_existing_run_needs_resume_or_overwrite(tmp_path, config, capsys):
    (tmp_path / "out" / "last").mkdir(parents=True)
    (tmp_path / "out" / "last" / "trainer_state.json").write_text("{}")
    argv = train_argv("classification", "pt", config, tmp_path / "out")
    assert "already holds a run" in error_of(argv, capsys)
    assert "--resume and --overwrite contradict" in error_of(argv + ["--resume", "--overwrite"], capsys)


def test_bad_data_is_reported(tmp_path, config, capsys):
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text("sentence\tlabel\ngood film\tpos\nbad film\tneg\n")
    dev.write_text("sentence\tlabel\nfine film\tneutral\n")
    argv = train_argv("classification", "pt", config, tmp_path / "out", train=train, eval=dev, batch_size=2)
    assert "label(s) ['neutral'] never occur in --train" in error_of(argv, capsys)
    argv = train_argv("classification", "pt", config, tmp_path / "out", train=train, eval=train, batch_size=4)
    assert "the training set has 2 rows (features), fewer than one global batch of 4" in error_of(argv, capsys)


def test_vocabulary_must_fit_the_tokenizer(tmp_path, capsys):
    path = tiny_config(tmp_path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "vocab_size": 1000}))
    argv = train_argv("classification", "pt", path, tmp_path / "out")
    assert "has 128001 tokens but the model's vocab_size is 1000" in error_of(argv, capsys)


def test_keras_needs_the_tensorflow_or_jax_backend(tmp_path, config, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    argv = train_argv("classification", "tf", config, tmp_path / "out")
    assert "KERAS_BACKEND=torch is not supported" in error_of(argv, capsys)
