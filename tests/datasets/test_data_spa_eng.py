import zipfile

import pytest

from kzoo.datasets import spa_eng

SPA_TXT = "Go.\tVe.\nGo.\tVete.\nI'm here.\tEstoy aquí.\n"
# Newer manythings files carry an attribution column; Windows line endings too.
SPA_TXT_3COL = (
    "Go.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)\r\n"
    "Run!\t¡Corre!\tCC-BY 2.0 (France) Attribution: tatoeba.org #906328\r\n"
)


def test_from_seeded_gzip(offline, data_dir, write_gz):
    write_gz(str(data_dir / "spa-eng.txt.gz"), SPA_TXT)
    pairs = spa_eng.load_pairs()
    assert pairs == [("Go.", "Ve."), ("Go.", "Vete."), ("I'm here.", "Estoy aquí.")]
    assert offline.attempts == []
    assert (offline.datasets / "spa-eng.txt.gz").exists()


def test_from_manythings_zip_and_plain_file(offline, tmp_path):
    archive = tmp_path / "spa-eng.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("_about.txt", "terms of use")
        zf.writestr("spa.txt", SPA_TXT_3COL)
    expected = [("Go.", "Ve."), ("Run!", "¡Corre!")]
    assert spa_eng.load_pairs(path=archive) == expected

    # The TensorFlow-hosted zip keeps the file in a folder.
    tf_archive = tmp_path / "tf.zip"
    with zipfile.ZipFile(tf_archive, "w") as zf:
        zf.writestr("spa-eng/spa.txt", SPA_TXT)
    assert len(spa_eng.load_pairs(path=tf_archive)) == 3

    plain = tmp_path / "spa.txt"
    plain.write_text(SPA_TXT + "\n", encoding="utf-8")  # trailing blank line
    assert spa_eng.load_pairs(path=plain)[-1] == ("I'm here.", "Estoy aquí.")
    assert offline.attempts == []


def test_bad_lines_name_the_line(tmp_path):
    bad = tmp_path / "spa.txt"
    bad.write_text("Go.\tVe.\nno tab on this line\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"spa.txt, line 2.*1 field"):
        spa_eng.load_pairs(path=bad)
    bad.write_text("a\tb\tc\td\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1.*4 field"):
        spa_eng.load_pairs(path=bad)


def test_zip_without_spa_txt(tmp_path):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fra.txt", "Go.\tVa !\n")
    with pytest.raises(ValueError, match="spa.txt"):
        spa_eng.load_pairs(path=archive)


def test_missing_offline(offline):
    with pytest.raises(OSError, match="spa-eng.txt.gz"):
        spa_eng.load_pairs()
    assert offline.attempts == [spa_eng.ORIGIN]


def test_shared_copy(offline, shared_env):
    pairs = spa_eng.load_pairs()
    assert len(pairs) == 118121
    assert pairs[0] == ("Go.", "Ve.")
    assert len({e for e, _ in pairs}) == 102323
    assert len({s for _, s in pairs}) == 112499
    assert max(len(e.split()) for e, _ in pairs) == 47
    assert max(len(s.split()) for _, s in pairs) == 53
    assert offline.attempts == []
