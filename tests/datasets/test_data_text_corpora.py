import pytest

from kzoo.datasets import text_corpora


def test_seeded_and_local(offline, data_dir, write_gz, tmp_path):
    text = "First Citizen:\nBefore we proceed\r\nany further, hear me speak.\n"
    write_gz(str(data_dir / "tinyshakespeare.txt.gz"), text)
    assert text_corpora.load_text("tinyshakespeare") == text
    assert (offline.datasets / "tinyshakespeare.txt.gz").exists()

    local = tmp_path / "nietzsche.txt"
    local.write_bytes("SUPPOSING that Truth is a woman--what then? Æ ä\n".encode())
    assert text_corpora.load_text("nietzsche", path=local).endswith("Æ ä\n")
    assert offline.attempts == []


def test_unknown_name():
    with pytest.raises(ValueError, match="'shakespeare'.*nietzsche"):
        text_corpora.load_text("shakespeare")


def test_missing_offline(offline):
    with pytest.raises(OSError, match="nietzsche.txt.gz"):
        text_corpora.load_text("nietzsche")
    assert offline.attempts == [text_corpora.CORPORA["nietzsche"][1]]


def test_shared_copies(offline, shared_env):
    text = text_corpora.load_text("tinyshakespeare")
    assert len(text) == 1115394
    assert len(set(text)) == 65
    assert text.startswith("First Citizen:")
    text = text_corpora.load_text("nietzsche")
    assert len(text) == 600893
    assert len(set(text.lower())) == 57
    assert text.startswith("PREFACE\n\n\nSUPPOSING that Truth is a woman--what then?")
    assert offline.attempts == []
